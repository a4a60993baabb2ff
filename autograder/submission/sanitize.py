"""Sanitize a submission before anything of it runs: only the code the student was asked to write.

The notebook that runs holds the set-up cells of the instructor's source notebook (so that a
student cannot change the imports, the seed or ``CLASS_NAMES`` that the checks rely on), the
student's solution cells and, of the student's other code cells, only their definitions (imports,
functions, classes, assigned names: ``autograder.submission.cells.definitions_of``), in the student's
order, those above the set-up before it. Everything else — the lesson's calling cells and the test
cells as the source has them, the student's calls of the contract's functions, markdown, outputs —
is left out: none of it may influence a grade. This is the job nbgrader's ``OverwriteCells`` does
for locked cells, done by construction.
"""

from __future__ import annotations

from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_notebook

from autograder.submission.cells import (
    cell_role,
    cell_source,
    definitions_of,
    imported_names,
    is_setup_cell,
    is_solution_cell,
)
from autograder.submission.notebook import read_notebook


def sanitize(nb: nbformat.NotebookNode, source: nbformat.NotebookNode | None) -> nbformat.NotebookNode:
    setup_cells = [cell for cell in (source or nb).cells if is_setup_cell(cell)]
    # The source's own cells, wherever a student's copy lost their metadata: never the student's code.
    lesson = {cell_source(cell) for cell in source.cells if not is_solution_cell(cell)} if source else set()
    # The set-up runs where the student's notebook has it, as in Jupyter: what a cell above it defines
    # (its own CLASS_NAMES, say), the set-up redefines. The solution cells run after it whatever their place.
    setup_at = next((index for index, cell in enumerate(nb.cells) if is_setup_cell(cell)), 0)
    imported = imported_names([*setup_cells, *nb.cells])
    before, after = [], []
    for index, cell in enumerate(nb.cells):
        role = cell_role(cell)
        if role == "solution":
            after.append(new_code_cell(source=cell_source(cell), metadata=graded_metadata(cell, index)))
        elif role == "added" and cell_source(cell) not in lesson:
            definitions = definitions_of(cell_source(cell), imported)
            if definitions:
                (before if index < setup_at else after).append(
                    new_code_cell(source=definitions, metadata=graded_metadata({}, index)))
    setup = [new_code_cell(source=cell_source(cell), metadata=graded_metadata(cell)) for cell in setup_cells]
    return new_notebook(cells=[*before, *setup, *after])


def graded_metadata(cell, index: int | None = None) -> dict:
    """Of the metadata, only what grading reads (anything else Jupyter's schema may refuse to write), and
    the kit's own entry: for a student's cell its number in the student's notebook (``index`` from 0),
    which messages name; none for the instructor's set-up cells."""
    metadata = cell.get("metadata", {})
    kept = {}
    # Tags as Jupyter's schema has them (unique, not empty, no comma), which the writer checks, and of
    # nbgrader's fields the three that say what a cell is: a student may have edited any of them.
    tags = [tag for tag in dict.fromkeys(metadata.get("tags", [])) if tag and "," not in tag and _writable(tag)]
    if tags:
        kept["tags"] = tags
    if "nbgrader" in metadata:
        kept["nbgrader"] = {key: bool(value) for key, value in metadata["nbgrader"].items() if key in NBGRADER_ROLES}
    return {**kept, "autograder": {} if index is None else {"cell": index + 1}}


NBGRADER_ROLES = ("solution", "grade", "locked")  # what autograder.submission.cells reads of a cell


def _writable(text: str) -> bool:
    try:
        text.encode()
        return True
    except UnicodeEncodeError:  # a lone surrogate, which JSON's \ud800 may hold
        return False


def write_sanitized(path: Path, source_path: Path | None, destination: Path, raw: bytes | None = None) -> str | None:
    """Read a submission (with the reader's clear errors), sanitize it and write the result; the
    language the notebook says it speaks (``autograder.i18n.notebook_language``), if any. ``raw``: the
    submission's bytes, read already."""
    from autograder.i18n import notebook_language

    source = read_notebook(source_path) if source_path is not None and source_path.exists() else None
    submitted = read_notebook(path, raw)
    nbformat.write(sanitize(submitted, source), destination)
    return notebook_language(submitted)
