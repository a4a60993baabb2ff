"""A submitted notebook: read, run cell by cell, sanitized against the source notebook, linted."""
