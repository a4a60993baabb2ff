"""What a check is and what it may look at: the data types every check function shares.

A check is data (id, points, hidden, description) plus a function taking the ``Evidence`` —
what the submission's functions produced on the kit's inputs (``Artifacts``) and the kit's own
data — and returning a message on success or raising ``CheckFailed`` with a message that names
the mistake in the student's terms. ``run_check`` turns either into a ``CheckResult``: a check
that trips over what the student built is still a result, never a crash of the grader.
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass, field, replace
from typing import Any, Callable

import numpy as np

from autograder.assignment import EPOCHS
from autograder.config import DEFAULT_PASS_MARK
from autograder.errors import CheckFailed, NotDone
from autograder.i18n import _
from autograder.sandbox.artifacts import Artifacts


@dataclass(frozen=True)
class Check:
    id: str
    points: int
    hidden: bool
    description: str
    run: Callable[["Evidence"], str] = field(repr=False, compare=False)
    needs_training: bool = False


@dataclass(frozen=True)
class CheckResult:
    id: str
    points: int
    max_points: int
    passed: bool
    message: str
    skipped: bool = False
    not_done: bool = False

    def to_json(self) -> dict:
        # Exactly the fields of the contract's JSON report.
        return {
            "id": self.id,
            "points": self.points,
            "max_points": self.max_points,
            "passed": self.passed,
            "message": self.message,
        }


@dataclass
class Evidence:
    """What a check may look at: the artifacts (what the student's code produced), the kit's data,
    and the trainer's record of the training (``autograder.trainer.records``: facts, not claims)."""

    artifacts: Artifacts
    data: Any  # autograder.data.reference.ReferenceData, with the test labels the student never sees
    training: Any = None  # autograder.trainer.records.TrainingRecord
    pass_mark: float = DEFAULT_PASS_MARK  # the test accuracy test_accuracy asks for (autograder.config)
    epochs: int = EPOCHS  # the epochs grading asked train_model for, which the training check expects

    def produced(self, probe: str, *, model: str | None = None) -> None:
        """Fail the check with the probe's own message when the student's function produced nothing."""
        if probe in self.artifacts.not_done:
            raise NotDone(self.artifacts.errors[probe])
        if probe in self.artifacts.errors:
            raise CheckFailed(self.artifacts.errors[probe])
        if model is not None:
            problem = self.artifacts.errors.get(f"model:{model}")
            if problem:
                raise CheckFailed(problem)
            if model not in self.artifacts.models:
                raise CheckFailed(_("the grader received no model from your code"))

    def array(self, name: str) -> np.ndarray:
        if name not in self.artifacts.arrays:
            raise CheckFailed(_("the grader received no result from your function"))
        return self.artifacts.arrays[name]


# A message says what to fix in a few lines; the text a student's code put in it (an exception's, a type's
# name) could otherwise fill the 8 MiB the artifacts allow, in every report, page and log line it reaches.
MAX_MESSAGE_CHARS = 2000


# Terminal colours and styles, as Keras writes them into its exceptions (``\x1b[1m`` bold): in a report's
# JSON, web page or Gradescope text they are noise around the words.
ANSI_STYLE = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]")


def short(message) -> str:
    """``message`` without terminal styles, cut to ``MAX_MESSAGE_CHARS``, saying how long it was."""
    text = ANSI_STYLE.sub("", str(message))
    if len(text) <= MAX_MESSAGE_CHARS:
        return text
    return _("{start}… (cut short: {total} characters in all)").format(start=text[:MAX_MESSAGE_CHARS],
                                                                       total=f"{len(text):,}")


def run_check(check: Check, ev: Evidence) -> CheckResult:
    result = _run_check(check, ev)
    return replace(result, message=short(result.message))


def _run_check(check: Check, ev: Evidence) -> CheckResult:
    try:
        with warnings.catch_warnings():  # Keras's warnings about a student's model are not failures
            warnings.simplefilter("ignore")
            message = check.run(ev)
    except NotDone as failure:
        return CheckResult(check.id, 0, check.points, False, str(failure), not_done=True)
    except CheckFailed as failure:
        return CheckResult(check.id, 0, check.points, False, str(failure))
    except Exception as error:  # a check tripped over something the student built: still a result
        return CheckResult(check.id, 0, check.points, False, _("could not be checked: {error}").format(
            error=f"{type(error).__name__}: {error}"))
    return CheckResult(check.id, check.points, check.points, True, message)


def skipped(check: Check, why: str) -> CheckResult:
    return CheckResult(check.id, 0, check.points, False, why, skipped=True)
