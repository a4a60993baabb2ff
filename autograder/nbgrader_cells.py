"""What the assignment notebook's cells call: ``check("normalize", globals())``, ``summary(globals())``.

These run inside the student's kernel (in Jupyter, and under ``nbgrader autograde``). ``check`` runs
one of the kit's checks on the functions the notebook defines and prints one line, ``✓ id (points):
message``; a failed check raises ``FailedCheck``, which Jupyter shows as that one line, not a
traceback, and nbgrader counts as a failed test cell (0 points). ``summary`` prints a table of every
public check.

nbgrader also gives a test cell 0 points when anything reaches stderr, and TensorFlow writes there on
its own, so the checks run with stderr silenced — down to the file descriptor, where TensorFlow's C++
logging writes — and the training's progress goes to stdout, one line per epoch.

What a check looks at is probed once per set of definitions: the probes of every function are kept
while the same function objects are defined, the training while ``build_model``, ``compile_model``
and ``train_model`` are (re-running another function's cell does not train again).

This module and what it imports need only the student's install, not the grader's extras.
(In-kernel checks are only as trustworthy as the kernel: ``autograder grade`` runs student code in a
sandbox and judges its artifacts in a separate process instead.)
"""

from __future__ import annotations

import contextlib
import io
import os
import sys
import warnings

from autograder.assignment import FUNCTIONS
from autograder.errors import CheckFailedInNotebook

TRAINING_FUNCTIONS = ("build_model", "compile_model", "train_model")

# What this kernel probed, each entry with the function objects it was probed with (held, so that
# their ids cannot be reused by the functions of a cell run again).
_kernel_state: dict = {}


class FailedCheck(CheckFailedInNotebook):
    """A failed check: Jupyter shows its one line (IPython's ``_render_traceback_``), nbgrader sees an error."""

    def _render_traceback_(self) -> list[str]:
        return [str(self)]


@contextlib.contextmanager
def silenced_stderr():
    sys.stderr.flush()
    saved_fd = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    os.close(devnull)
    try:
        with contextlib.redirect_stderr(io.StringIO()), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        os.dup2(saved_fd, 2)
        os.close(saved_fd)


def quiet_tensorflow() -> None:
    """Load TensorFlow without its start-up messages: the notebook's set-up cell calls it before
    ``import keras``. TensorFlow logs to stderr while it loads, before any setting can stop it."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    if "tensorflow" not in sys.modules:
        with silenced_stderr():
            import tensorflow  # noqa: F401


def _functions(namespace: dict) -> dict:
    return {name: namespace.get(name) if callable(namespace.get(name)) else None for name in FUNCTIONS}


def _cached(entry: str, functions: dict, names, make):
    """The kernel's ``entry``, made afresh by ``make()`` unless it was made with the same ``names`` functions."""
    held = _kernel_state.get(entry)
    if held is None or any(held[0][name] is not functions[name] for name in names):
        _kernel_state[entry] = (functions, make())
    return _kernel_state[entry][1]


def _reference():
    if "data" not in _kernel_state:
        from autograder.data.inputs import ProbeInputs
        from autograder.data.reference import ReferenceData

        data = ReferenceData.load()
        _kernel_state.update(data=data, inputs=ProbeInputs.from_reference(data))
    return _kernel_state["data"], _kernel_state["inputs"]


def _probed(functions: dict):
    from autograder.judge.evidence import Evidence
    from autograder.sandbox.probe import collect

    data, inputs = _reference()
    return Evidence(collect(functions, inputs), data)


def _trained(functions: dict):
    from autograder.assignment import EPOCHS
    from autograder.config import epochs_in_effect
    from autograder.judge.evidence import Evidence
    from autograder.sandbox.fit_client import FitClient, LocalTransport
    from autograder.sandbox.probe import collect
    from autograder.trainer.fast_path import epoch_progress
    from autograder.trainer.service import Trainer

    data, inputs = _reference()
    epochs = epochs_in_effect()  # the notebook's folder: the instructor's autograder.toml, if it is there
    print(f"Training your model for {epochs} epochs, as the grader does"
          f"{' (about a minute)' if epochs == EPOCHS else ''}:", flush=True)
    trainer = Trainer.from_images(data.train_images, data.train_labels, data.test_images,
                                  progress=[epoch_progress(sys.stdout)])
    artifacts = collect(functions, inputs, client=FitClient(LocalTransport(trainer)), epochs=epochs)
    return Evidence(artifacts, data, trainer.finish(), epochs=epochs)


def _quick(functions: dict):
    from autograder.quick_training import quick_training

    return quick_training(functions, _reference()[1])


def result_of(check, namespace: dict):
    """The ``CheckResult`` of one check on the notebook's functions; the training's quick check first."""
    from autograder.judge.evidence import run_check

    functions = _functions(namespace)
    with silenced_stderr():
        if check.id == "training":
            quick = _cached("quick", functions, TRAINING_FUNCTIONS, lambda: _quick(functions))
            if quick is not None:
                return quick
        if check.needs_training:
            evidence = _cached("trained", functions, TRAINING_FUNCTIONS, lambda: _trained(functions))
        else:
            evidence = _cached("probed", functions, FUNCTIONS, lambda: _probed(functions))
        return run_check(check, evidence)


def line(result) -> str:
    mark = "✓" if result.passed else "✗"
    return f"{mark} {result.id} ({result.points}/{result.max_points} points): {result.message}"


def check(check_id: str, namespace: dict) -> None:
    """Print a passed check's line; raise a failed one's (the test cell fails with that one line)."""
    from autograder.judge.checks import CHECKS_BY_ID

    result = result_of(CHECKS_BY_ID[check_id], namespace)
    if not result.passed:
        raise FailedCheck(line(result))
    print(line(result))


def summary(namespace: dict) -> None:
    """Print every public check's result in a table, and the total (the training included: the
    training check's cell trains once; here it is trained again only if its functions changed)."""
    from autograder.judge.checks import CHECKS

    public = [check for check in CHECKS if not check.hidden]
    results = [result_of(check, namespace) for check in public]
    width = max(len(check.id) for check in public)
    rows = [f"{'check':<{width}}  {'points':>6}  result", f"{'-' * width}  {'-' * 6}  {'-' * 6}"]
    for result in results:
        verdict = "✓ passed" if result.passed else ("✗ not done" if result.not_done else "✗ failed")
        rows.append(f"{result.id:<{width}}  {f'{result.points}/{result.max_points}':>6}  {verdict}")
    score, total = sum(r.points for r in results), sum(r.max_points for r in results)
    rows.append(f"{'total':<{width}}  {f'{score}/{total}':>6}")
    hidden = sum(check.points for check in CHECKS if check.hidden)
    rows.append(f"Hidden checks ({hidden} points, such as the test accuracy) run only when your work is graded.")
    rows.extend(line(result) for result in results if not result.passed)
    print("\n".join(rows))
