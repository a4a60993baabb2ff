"""Mistakes read from the notebook's own code, without running it, for feedback that costs no points.

The contract grades functions, and the grader measures the test accuracy itself on the normalized
test set, so a lesson cell that evaluates the model on the raw test images cannot change a grade.
It is still the tutorial's classic bug, and a student should hear about it.
"""

from __future__ import annotations

import ast

from autograder.assignment import FUNCTIONS
from autograder.i18n import _
from autograder.submission.cells import code_trees

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
    notes = list(dict.fromkeys([*raw_test_image_notes(nb), *defined_twice_notes(nb)]))
    if len(notes) > MAX_NOTES:
        return [*notes[:MAX_NOTES], _("and {count} more notes like these").format(count=len(notes) - MAX_NOTES)]
    return notes


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
