"""Mistakes read from the notebook's own code, without running it, for feedback that costs no points.

The contract grades functions, and the grader measures the test accuracy itself on the normalized
test set, so a lesson cell that evaluates the model on the raw test images cannot change a grade.
It is still the tutorial's classic bug, and a student should hear about it.
"""

from __future__ import annotations

import ast
import hashlib

from autograder.assignment import FUNCTIONS
from autograder.i18n import _
from autograder.submission.cells import cell_source, code_trees, is_setup_cell

RAW_TEST_IMAGES = "test_images"  # what the locked data cell calls the unscaled test images


def raw_names(tree: ast.AST) -> set[str]:
    """Names that hold the raw test images: test_images itself and plain copies of it (X_test = test_images)."""
    names = {RAW_TEST_IMAGES}
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Name) and node.value.id in names:
            names.update(t.id for t in node.targets if isinstance(t, ast.Name))
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Tuple):
            for target in node.targets:
                if isinstance(target, ast.Tuple):
                    for t, v in zip(target.elts, node.value.elts):
                        if isinstance(t, ast.Name) and isinstance(v, ast.Name) and v.id in names:
                            names.add(t.id)
    return names


MAX_NOTES = 10  # a notebook may repeat a mistake thousands of times: each note once, and a few of them


def notebook_notes(nb) -> list[str]:
    notes = list(dict.fromkeys([*edited_setup_notes(nb), *raw_test_image_notes(nb), *defined_twice_notes(nb)]))
    if len(notes) > MAX_NOTES:
        return [*notes[:MAX_NOTES], _("and {count} more notes like these").format(count=len(notes) - MAX_NOTES)]
    return notes


def edited_setup_notes(nb) -> list[str]:
    """A set-up cell changed since nbgrader handed it out locked: grading runs the instructor's own, so what a student
    added there is not defined when graded, and a self-check, which runs the notebook as it is, cannot show it."""
    return [_(
        "cell {index} is a set-up cell, handed out locked, and it was changed: grading runs it as it was handed out, "
        "so what you added there (an import, a constant) is not defined when graded; put it in your own cells"
    ).format(index=index) for index, cell in enumerate(nb.cells, start=1)
        if is_setup_cell(cell) and handed_out_unchanged(cell) is False]


def handed_out_unchanged(cell) -> bool | None:
    """Whether a cell is as nbgrader handed it out, by the checksum nbgrader wrote in its metadata; None without
    one. ``nbgrader.utils.compute_checksum``, written again: a student's install has no nbgrader. An editor's
    line endings or trailing blanks are no change: the text is also tried without them."""
    meta = cell.get("metadata", {}).get("nbgrader")
    if not (isinstance(meta, dict) and isinstance(meta.get("checksum"), str) and isinstance(meta.get("grade_id"), str)):
        return None
    grade, solution = meta.get("grade", False), meta.get("solution", False)
    locked = False if solution else True if grade else meta.get("locked", False)
    try:
        points = str(float(meta.get("points"))) if grade else ""
    except (TypeError, ValueError, OverflowError):
        return False
    source = cell_source(cell)
    lines = source.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    for text in dict.fromkeys([source, "\n".join(lines), "\n".join(line.rstrip() for line in lines).rstrip()]):
        digest = hashlib.md5(usedforsecurity=False)
        for part in (text, cell.get("cell_type", ""), grade, solution, locked, meta["grade_id"], points):
            digest.update(str(part).encode("utf-8", "surrogatepass"))
        if digest.hexdigest() == meta["checksum"]:
            return True
    return False


def defined_twice_notes(nb) -> list[str]:
    """A function of the contract defined in two cells: grading runs the cells in the notebook's order,
    so the last one counts, which need not be the one the student ran last in Jupyter."""
    cells: dict[str, list[int]] = {}
    for index, tree in code_trees(nb.cells):
        for node in tree.body:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name in FUNCTIONS:
                if index not in cells.setdefault(node.name, []):
                    cells[node.name].append(index)
    return [_(
        "`{name}` is defined in cells {cells}: the grader used the last one, as Jupyter does when the cells run "
        "from top to bottom; delete the others"
    ).format(name=name, cells=", ".join(map(str, numbers))) for name, numbers in cells.items() if len(numbers) > 1]


def raw_test_image_notes(nb) -> list[str]:
    notes = []
    for index, tree in code_trees(nb.cells):
        raw = raw_names(tree)
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr in ("evaluate", "predict")
                and node.args
                and isinstance(node.args[0], ast.Name)
                and node.args[0].id in raw
            ):
                notes.append(_(
                    "cell {index} calls model.{method}({images}, ...) on test images that were not normalized: the "
                    "network was trained on pixels in [0, 1], so evaluate it on normalize(test_images) (the grader "
                    "measured your accuracy on the normalized test set)"
                ).format(index=index, method=node.func.attr, images=node.args[0].id))
    return notes
