"""Sanitize a submission before anything of it runs: only the code the student was asked to write.

The notebook that runs holds the set-up cells of the instructor's source notebook (so that a
student cannot change the imports, the seed or ``CLASS_NAMES`` that the checks rely on) and the
student's solution cells, in the student's order. Everything else — the lesson's calling cells,
the test cells, markdown, outputs — is left out: none of it may influence a grade. This is the
job nbgrader's ``OverwriteCells`` does for locked cells, done by construction.
"""

from __future__ import annotations

from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_notebook

from autograder.submission.notebook import is_setup_cell, is_solution_cell, read_notebook


def sanitize(nb: nbformat.NotebookNode, source: nbformat.NotebookNode | None) -> nbformat.NotebookNode:
    setup_cells = [cell for cell in (source or nb).cells if is_setup_cell(cell)]
    solution_cells = [cell for cell in nb.cells if is_solution_cell(cell) and not is_setup_cell(cell)]
    cells = [
        # Of the metadata, only what grading reads: anything else Jupyter's schema may refuse to write.
        new_code_cell(source=cell.get("source", ""),
                      metadata={k: v for k, v in cell.get("metadata", {}).items() if k in ("tags", "nbgrader")})
        for cell in [*setup_cells, *solution_cells]
    ]
    return new_notebook(cells=cells)


def write_sanitized(path: Path, source_path: Path | None, destination: Path, raw: bytes | None = None) -> str | None:
    """Read a submission (with the reader's clear errors), sanitize it and write the result; the
    language the notebook says it speaks (``autograder.i18n.notebook_language``), if any. ``raw``: the
    submission's bytes, read already."""
    from autograder.i18n import notebook_language

    source = read_notebook(source_path) if source_path is not None and source_path.exists() else None
    submitted = read_notebook(path, raw)
    nbformat.write(sanitize(submitted, source), destination)
    return notebook_language(submitted)
