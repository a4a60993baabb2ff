"""In which order a batch's submissions start on several workers: the longest expected first.

A batch ends when its last submission does. On two workers, a submission that trains 1.5 times as
long as the others, started last, keeps one worker busy while the other has nothing left (in
``benchmarks/grade_batch.py`` the Adam variant, 7th of 8, left 30 worker-seconds idle). Starting
the longest first (Graham's LPT rule) leaves the short ones to fill the gaps at the end.

The grader cannot know a submission's cost before running it, so the order comes from an estimate
read from its code without running it, in the cells grading runs (set-up and solution cells): the
optimizer its ``compile`` call names and the epochs and batch size of its ``fit`` calls, priced
with per-epoch and per-step costs measured on the lesson's network (``benchmarks/optimizer_cost.py``).
What the estimate cannot read (a value computed at run time, an optimizer it does not know) is taken
as the assignment's: the epochs the batch asks ``train_model`` for (the config's, 30 by default),
batches of 32, SGD; no training is priced past the batch's training limit. A wrong estimate costs
time, never points: each submission is graded alone in its sandbox, seeded, so the order changes no
result, and the reports keep the order given.

When the batch reuses trainings, a notebook whose graded code is the same as an earlier one's (the
code as Python parses it: comments, blank lines and spacing aside) is expected to replay that one's
training, so its estimate is the part outside training and it starts after the trainings. Started
beside its twin, it would wait for the twin's training with its worker idle (in
``benchmarks/grade_class.py``, the class's two copies of the Adam variant started first, together).
"""

from __future__ import annotations

import ast
import hashlib
import math
from pathlib import Path

from autograder.assignment import BATCH_SIZE, EPOCHS, N_VALID
from autograder.errors import NotebookError
from autograder.limits import Limits
from autograder.submission.cells import cell_source, is_setup_cell, is_solution_cell, parse_cell
from autograder.submission.notebook import read_notebook

TRAINING_IMAGES = 60_000 - N_VALID
# Measured on this machine, one thread, the kit's fast path (benchmarks/optimizer_cost.py): an epoch
# costs 0.58 s for the forward and backward passes over 55,000 images whatever the batch size, plus
# one optimizer update per batch, dearer the more state the optimizer keeps per weight. The model
# predicts the measured epochs of other batch sizes within 7 % (Adam at 64: 0.91 s against 0.85 s).
EPOCH_SECONDS = 0.58
UPDATE_MS = {
    "sgd": 0.11,
    "sgd_momentum": 0.24,
    "rmsprop": 0.29,
    "adagrad": 0.32,
    "adam": 0.38,
    "adamw": 0.39,
    "nadam": 0.60,
}
OUTSIDE_TRAINING_SECONDS = 8.0  # start, cells, probes, judging (benchmarks/grade_batch.py: 10 epochs took 16 s)
KERAS_DEFAULT_OPTIMIZER = "rmsprop"  # what `compile` uses when it is given none
DEFAULT_OPTIMIZER = "sgd"  # the assignment's, for an optimizer this module cannot name


def estimated_seconds(path: Path, *, epochs: int = EPOCHS, training_limit: float | None = None) -> float:
    """About how long grading this notebook takes on one worker, ``train_model`` asked for ``epochs``
    and a training stopped after ``training_limit`` seconds (the default limits'); 0 for a file that is
    not a notebook (it is turned away before anything runs)."""
    return estimate_and_trees(path, epochs=epochs, training_limit=training_limit)[0]


def estimate_and_trees(path: Path, *, epochs: int = EPOCHS,
                       training_limit: float | None = None) -> tuple[float, list[ast.AST] | None]:
    """``estimated_seconds`` and the graded cells as Python parses them (None where they cannot be read)."""
    try:
        trees = graded_trees(read_notebook(path))
        return trees_estimate(trees, epochs=epochs, training_limit=training_limit), trees
    except NotebookError:
        return 0.0, None
    except Exception:  # e.g. RecursionError from ast.parse: an order must never stop the batch
        return OUTSIDE_TRAINING_SECONDS + training_seconds(epochs, BATCH_SIZE, DEFAULT_OPTIMIZER), None


def code_digest(trees: list[ast.AST]) -> bytes | None:
    """The graded code as Python parses it (comments, blank lines and spacing aside), as a digest; None
    for code too deep to print."""
    try:
        digest = hashlib.sha256()
        for tree in trees:
            digest.update(ast.dump(tree).encode())
            digest.update(b"\0")
        return digest.digest()
    except Exception:  # RecursionError on a deep expression: no twin, the estimate stands
        return None


def graded_trees(nb) -> list[ast.AST]:
    """The cells grading runs (set-up and solution cells), parsed; a cell Python cannot parse is left out."""
    trees = []
    for cell in nb.cells:
        if is_setup_cell(cell) or is_solution_cell(cell):
            try:
                trees.append(parse_cell(cell_source(cell)))
            except SyntaxError:
                continue
    return trees


def trees_estimate(trees: list[ast.AST], *, epochs: int = EPOCHS, training_limit: float | None = None) -> float:
    values = assigned_values(trees)
    optimizer = DEFAULT_OPTIMIZER
    fits = []
    for tree in trees:
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
                receiver = node.func.value
                if node.func.attr == "compile" and not (isinstance(receiver, ast.Name) and receiver.id == "re"):
                    optimizer = optimizer_name(argument(node, "optimizer", 0), values)
                elif node.func.attr == "fit":
                    fits.append(node)
    training = 0.0
    for fit in fits:  # none: the notebook cannot train (stubs), so grading it is short
        fit_epochs = constant_number(argument(fit, "epochs", 3), values, epochs, low=0, high=10_000)
        batch_size = constant_number(argument(fit, "batch_size", 2), values, BATCH_SIZE, low=1, high=TRAINING_IMAGES)
        training += training_seconds(fit_epochs, batch_size, optimizer)
    # No training may last longer than the trainer allows, whatever the code says (dead code such as
    # `if False: model.fit(..., epochs=10_000)` would otherwise jump the queue).
    limit = Limits().training_seconds if training_limit is None else training_limit
    return OUTSIDE_TRAINING_SECONDS + min(training, limit)


def training_seconds(epochs: int, batch_size: int, optimizer: str) -> float:
    update_ms = UPDATE_MS.get(optimizer, UPDATE_MS[DEFAULT_OPTIMIZER])
    return epochs * (EPOCH_SECONDS + math.ceil(TRAINING_IMAGES / batch_size) * update_ms / 1000)


def start_order(paths: list[Path], *, reuse: bool = False, epochs: int = EPOCHS,
                training_limit: float | None = None, owners: list[str] | None = None) -> list[tuple[int, float]]:
    """``(index in paths, estimated seconds)``, the longest expected first; equal estimates keep the order
    given. With ``reuse``, a notebook with the same graded code as an earlier one is expected to replay
    its training: at most ``OUTSIDE_TRAINING_SECONDS``. ``epochs`` and ``training_limit``: the batch's
    (``estimated_seconds``). ``owners``: who handed each in; every owner's first notebook starts before anyone's
    second, so that a student who hands in twenty, each claiming a long training with dead code, holds back
    no classmate's start but by one."""
    estimates = []
    seen: set[bytes] = set()
    for path in paths:
        estimate, trees = estimate_and_trees(path, epochs=epochs, training_limit=training_limit)
        code = code_digest(trees) if reuse and trees is not None else None
        if code is not None:
            if code in seen:
                estimate = min(estimate, OUTSIDE_TRAINING_SECONDS)
            seen.add(code)
        estimates.append(estimate)
    ranks, handed_in = [], {}  # each notebook's place among its owner's, in the order given
    for index in range(len(paths)):
        owner = owners[index] if owners else str(index)
        ranks.append(handed_in.get(owner, 0))
        handed_in[owner] = ranks[-1] + 1
    return sorted(enumerate(estimates), key=lambda entry: (ranks[entry[0]], -entry[1]))


def assigned_values(trees: list[ast.AST]) -> dict[str, ast.expr]:
    """``NAME = value`` anywhere in the cells, the last one winning: enough to follow
    ``EPOCHS = 20`` or ``opt = keras.optimizers.Adam()`` to what they hold."""
    values: dict[str, ast.expr] = {}
    for tree in trees:
        for node in ast.walk(tree):
            if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
                values[node.targets[0].id] = node.value
    return values


def argument(call: ast.Call, name: str, position: int) -> ast.expr | None:
    for keyword in call.keywords:
        if keyword.arg == name:
            return keyword.value
    return call.args[position] if len(call.args) > position else None


def resolved(node: ast.expr | None, values: dict[str, ast.expr]) -> ast.expr | None:
    for _ in range(4):  # a few names deep; a cycle (a = b; b = a) ends here
        if isinstance(node, ast.Name) and node.id in values:
            node = values[node.id]
        else:
            break
    return node


def optimizer_name(node: ast.expr | None, values: dict[str, ast.expr]) -> str:
    node = resolved(node, values)
    if node is None:
        return KERAS_DEFAULT_OPTIMIZER
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value.lower()
    if isinstance(node, ast.Call):
        function = node.func
        name = (function.attr if isinstance(function, ast.Attribute) else getattr(function, "id", "")).lower()
        if name == "sgd" and constant_number(argument(node, "momentum", 1), values, 0, low=0, high=1, number=float):
            return "sgd_momentum"
        return name
    return DEFAULT_OPTIMIZER


def constant_number(node, values, default, *, low, high, number=int):
    """The number ``node`` holds, clamped to [low, high], or ``default`` when it is not written as one."""
    node = resolved(node, values)
    if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)) and not isinstance(node.value, bool):
        return min(max(number(node.value), low), high)
    return default
