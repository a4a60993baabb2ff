"""What the test cells of the assignment notebook call: ``check("normalize", globals())``.

These run inside the student's kernel (in Jupyter, and under ``nbgrader autograde``). Each runs
one of the kit's checks on the functions the notebook defines, prints its message, and fails the
cell with that message when the check fails. nbgrader gives a test cell 0 points when anything
reaches stderr, and TensorFlow writes there on its own, so a check runs with stderr silenced —
down to the file descriptor, where TensorFlow's C++ logging writes.

(In-kernel checks are only as trustworthy as the kernel: ``autograder grade`` runs student code
in a sandbox and judges its artifacts in a separate process instead.)
"""

from __future__ import annotations

import contextlib
import io
import os
import sys
import warnings

from autograder.assignment import FUNCTIONS
from autograder.errors import CheckFailedInNotebook

_kernel_state: dict = {}


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


def _evidence(namespace: dict, train: bool):
    """Probe the notebook's functions once per set of definitions (training only when asked)."""
    from autograder.data.inputs import ProbeInputs
    from autograder.data.reference import ReferenceData
    from autograder.judge.evidence import Evidence
    from autograder.sandbox.fit_client import FitClient, LocalTransport
    from autograder.sandbox.probe import collect
    from autograder.trainer.service import Trainer

    functions = {name: namespace.get(name) if callable(namespace.get(name)) else None for name in FUNCTIONS}
    key = (tuple(id(function) for function in functions.values()), train or _kernel_state.get("trained", False))
    if _kernel_state.get("key") != key:
        if "data" not in _kernel_state:
            data = ReferenceData.load()
            _kernel_state.update(data=data, inputs=ProbeInputs.from_reference(data))
        data = _kernel_state["data"]
        trainer = Trainer.from_images(data.train_images, data.train_labels, data.test_images) if train else None
        client = FitClient(LocalTransport(trainer)) if train else None
        artifacts = collect(functions, _kernel_state["inputs"], client=client)
        training = trainer.finish() if trainer is not None else None
        _kernel_state.update(key=key, trained=train, evidence=Evidence(artifacts, data, training))
    return _kernel_state["evidence"]


def check(check_id: str, namespace: dict) -> None:
    from autograder.judge.checks import CHECKS_BY_ID
    from autograder.judge.evidence import run_check

    check = CHECKS_BY_ID[check_id]
    with silenced_stderr():
        result = run_check(check, _evidence(namespace, train=check.needs_training))
    if not result.passed:
        raise CheckFailedInNotebook(f"{check_id}: {result.message}")
    print(f"{check_id}: passed ({result.points}/{result.max_points} points): {result.message}")
