"""What the test cells of the assignment notebook call: ``check("normalize", globals())``.

These run inside the student's kernel (in Jupyter, and under ``nbgrader autograde``). Each runs
one of the kit's checks on the functions the notebook defines, prints its message, and fails the
cell with that message when the check fails. nbgrader gives a test cell 0 points when anything
reaches stderr, and TensorFlow writes there on its own, so a check runs with stderr silenced —
down to the file descriptor, where TensorFlow's C++ logging writes.
"""

from __future__ import annotations

import contextlib
import io
import os
import sys
import warnings

from autograder.assignment import FUNCTIONS

_kernel_state: dict = {}


class CheckFailedInNotebook(AssertionError):
    """A failed check, shown in the notebook with the check's own message."""


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


def _submission(namespace: dict):
    """One Submission per set of functions: training is shared by the cells that need it."""
    from autograder.checks import Submission, describe_exception
    from autograder.reference import ReferenceData
    from autograder.training import train_submission

    functions = {name: namespace.get(name) if callable(namespace.get(name)) else None for name in FUNCTIONS}
    key = tuple(id(function) for function in functions.values())
    if _kernel_state.get("key") != key:
        if "data" not in _kernel_state:
            _kernel_state["data"] = ReferenceData.load()

        def trainer(sub):
            return train_submission(sub.functions, sub.data, describe_error=describe_exception)

        _kernel_state.update(key=key, submission=Submission(functions, _kernel_state["data"], trainer=trainer))
    return _kernel_state["submission"]


def check(check_id: str, namespace: dict) -> None:
    from autograder.checks import CHECKS_BY_ID, run_check

    with silenced_stderr():
        result = run_check(CHECKS_BY_ID[check_id], _submission(namespace))
    if not result.passed:
        raise CheckFailedInNotebook(f"{check_id}: {result.message}")
    print(f"{check_id}: passed ({result.points}/{result.max_points} points): {result.message}")
