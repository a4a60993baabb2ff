"""The judge's verdict on one submission: the ``GradeReport`` record and ``judge``, which makes it.

``judge`` runs every check of the table on the artifacts (what the submission's code produced)
and the trainer's record (what the kit's trainer did for it), in the trusted process; the points
come only from the table. ``GradeReport.ungraded`` is the report of a submission that could not
be judged at all: every check at 0 with the reason. The batch stores these records and every
report is written from them, so the JSON, the CSV, Gradescope's files and the pages cannot disagree.

Every JSON file the kit writes is strict JSON, which any parser reads: a non-finite number (a
student's NaN or infinity) is written as the string "NaN", "Infinity" or "-Infinity"
(``json_safe``), never as the bare tokens Python's ``json`` would write and other parsers reject.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

from autograder.i18n import ENGLISH, N_, _, current_language
from autograder.judge.checks import CHECKS, checks_table, max_score
from autograder.judge.evidence import MAX_MESSAGE_CHARS, CheckResult, Evidence, run_check
from autograder.text import printable

REUSED_NOTE = N_(
    "training reused: the grader's trainer had already trained this exact description (same model, "
    "compile settings, fit arguments, data and seed) for another submission, in this run or one kept with "
    "--trainings"
)


@dataclass
class GradeReport:
    submission: str
    score: int
    max_score: int
    error: str | None
    checks: list[CheckResult]
    notes: list[str] = field(default_factory=list)
    # For the feedback page, not the contract's JSON: the learning curves and the confusion matrix.
    history: dict[str, list[float]] = field(default_factory=dict)
    confusion: list[list[int]] | None = None
    # What grading it cost, for the log, Gradescope's execution_time and the benchmarks: "seconds"
    # (from start to report, in the grader), "sandbox_peak_memory_mib" (the sandbox's largest process).
    usage: dict[str, float] = field(default_factory=dict)
    # Who it belongs to (autograder.batch.local.student_key), set by the batch that graded it.
    student: str = ""
    # The language its messages were written in (autograder.i18n), which the pages and Gradescope's
    # results speak; not the contract's JSON, which is the same in every language.
    lang: str = ENGLISH

    @classmethod
    def ungraded(cls, path: str | Path, reason: str, usage: dict | None = None, table=CHECKS) -> "GradeReport":
        """A submission that could not be judged: every check of ``table`` at 0, each saying why."""
        message = _("not graded: {reason}").format(reason=reason)
        checks = [CheckResult(c.id, 0, c.points, False, message) for c in table]
        return cls(str(path), 0, max_score(table), reason, checks, usage=dict(usage or {}), lang=current_language())

    def to_json(self) -> dict:
        # Exactly the fields of the contract.
        return {
            "submission": self.submission,
            "student": self.student,
            "score": self.score,
            "max_score": self.max_score,
            "error": self.error,
            "checks": [result.to_json() for result in self.checks],
        }

    @classmethod
    def from_json(cls, data: dict, notes=(), feedback=None, usage=None, lang=ENGLISH) -> "GradeReport":
        checks = [CheckResult(c["id"], c["points"], c["max_points"], c["passed"], c["message"]) for c in data["checks"]]
        report = cls(data["submission"], data["score"], data["max_score"], data["error"], checks, list(notes))
        report.history = dict((feedback or {}).get("history") or {})
        report.confusion = (feedback or {}).get("confusion")
        report.usage = {key: value for key, value in dict(usage or {}).items()  # numbers only: the log formats them
                        if isinstance(key, str) and (type(value) is float and math.isfinite(value)
                                                     or type(value) is int and abs(value) < 2**53)}
        report.student = str(data.get("student") or "")
        report.lang = lang if isinstance(lang, str) and lang else ENGLISH
        return report

    def adds_up(self, table) -> bool:
        """Whether this is a result ``table`` can give: its checks in its order, each passed at its points or
        failed at 0 (no check gives part of its points), none passed where the submission could not be
        graded, messages no longer than the judge's, the score their sum. A stored result read back is
        checked so: whoever could write the results folder could otherwise plant any score."""
        if [result.id for result in self.checks] != [check.id for check in table]:
            return False
        for result, check in zip(self.checks, table):
            if not (type(result.points) is int and type(result.max_points) is int and result.max_points == check.points
                    and type(result.passed) is bool and result.points == (result.max_points if result.passed else 0)
                    and not ((result.skipped or result.not_done) and result.passed)
                    and isinstance(result.message, str) and len(result.message) <= MAX_MESSAGE_CHARS + 100):
                return False
        return (
            type(self.score) is int and self.score == sum(result.points for result in self.checks)
            and self.max_score == max_score(table)
            and (self.error is None or (isinstance(self.error, str) and self.score == 0))
        )

    @property
    def test_accuracy(self) -> float | None:
        """The test accuracy the grader measured: its confusion matrix's diagonal over its total. None
        without a square table of finite counts, 0 or more, with a total above 0 (a stored result read
        back may hold anything): every output shows this one number or none."""
        return accuracy_of(self.confusion)

    def payload(self) -> dict:
        """Everything known about this result, as stored and as sent back by a cluster's worker."""
        return {
            "report": self.to_json(),
            "notes": self.notes,
            "feedback": {"history": self.history, "confusion": self.confusion},
            "usage": self.usage,
            "lang": self.lang,
            # Not the contract's JSON: which failed checks were still to do, or not run (TODO, SKIP).
            "states": {r.id: "skipped" if r.skipped else "not_done" for r in self.checks if r.skipped or r.not_done},
        }

    @classmethod
    def from_payload(cls, payload: dict) -> "GradeReport":
        report = cls.from_json(payload["report"], payload.get("notes", []), payload.get("feedback"),
                               payload.get("usage"), payload.get("lang", ENGLISH))
        states = payload.get("states") if isinstance(payload.get("states"), dict) else {}
        report.checks = [replace(r, skipped=states.get(r.id) == "skipped", not_done=states.get(r.id) == "not_done")
                         for r in report.checks]
        return report


def judge(path: Path, artifacts, data, training=None, config=None) -> GradeReport:
    """The trusted half: every check on the artifacts and the trainer's record, points from the table
    with ``config``'s points, pass mark and epochs (autograder.config; None: the defaults)."""
    table = checks_table(config)
    evidence = Evidence(artifacts, data, training,
                        **({"pass_mark": config.pass_mark, "epochs": config.epochs} if config else {}))
    results = [run_check(check, evidence) for check in table]
    report = GradeReport(str(path), sum(r.points for r in results), max_score(table), None, results,
                         lang=current_language())
    if training is not None:
        report.history = training.history()
        report.confusion = confusion_matrix(training.predictions, data)
        report.usage["trainings_run"] = training.trainings_run
        report.usage["trainings_stored"] = training.trainings_stored
        if training.reused:
            report.notes.append(_(REUSED_NOTE))
    return report


def confusion_matrix(predictions, data) -> list[list[int]] | None:
    """Rows: true class; columns: predicted class; on the 10,000 test images, from the trainer's predictions."""
    import numpy as np

    if predictions is None or predictions.shape != data.test_labels.shape:
        return None
    matrix = np.zeros((10, 10), dtype=int)
    np.add.at(matrix, (data.test_labels, np.clip(predictions, 0, 9)), 1)
    return matrix.tolist()


def accuracy_of(confusion) -> float | None:
    """A confusion matrix's diagonal over its total (``GradeReport.test_accuracy``), or None."""
    if not isinstance(confusion, (list, tuple)) or not confusion:
        return None
    counts = []
    for row in confusion:
        if not isinstance(row, (list, tuple)) or len(row) != len(confusion):
            return None
        if not all(isinstance(count, numbers.Real) and not isinstance(count, bool) for count in row):
            return None
        try:
            counts.append([float(count) for count in row])
        except OverflowError:  # an integer too large for a float
            return None
    if not all(math.isfinite(count) and count >= 0 for row in counts for count in row):
        return None
    total = math.fsum(math.fsum(row) for row in counts)
    right = math.fsum(row[i] for i, row in enumerate(counts))
    return right / total if 0 < total < math.inf else None


def non_finite_text(value: float) -> str:
    return "NaN" if math.isnan(value) else "Infinity" if value > 0 else "-Infinity"


def json_safe(value):
    """``value`` made fit for strict JSON: each NaN, inf or -inf (at any depth) becomes the string
    "NaN", "Infinity" or "-Infinity", and each lone surrogate in a string the text ``\\udcXX``; tuples
    and NumPy arrays become lists, NumPy scalars Python numbers. Write it with
    ``json.dumps(json_safe(value), allow_nan=False)``."""
    if isinstance(value, str):  # a folder's undecodable bytes, a student's lone surrogate: as \udcXX
        return printable(value)
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        value = float(value)
        return value if math.isfinite(value) else non_finite_text(value)
    if isinstance(value, Mapping):
        return {json_safe(key) if isinstance(key, (float, str)) else key: json_safe(item)
                for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(item) for item in value]
    if hasattr(value, "tolist"):  # a NumPy array
        return json_safe(value.tolist())
    return value
