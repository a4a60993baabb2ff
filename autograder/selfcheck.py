"""A student's self-check: the public checks on their own notebook, fast by default.

The checks that need the full 30-epoch training are skipped unless ``full`` is set, and the
report says which were skipped and how to run them. Hidden checks run only when grading.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from autograder.judge.checks import CHECKS
from autograder.judge.evidence import CheckResult, run_check, skipped

FULL_HINT = "run `autograder check --full NOTEBOOK` (or `pytest --full`) to train for 30 epochs, about a minute"


@dataclass
class SelfCheckReport:
    notebook: str
    results: list[CheckResult]
    hidden_points: int
    notes: list[str]

    @property
    def score(self) -> int:
        return sum(r.points for r in self.results)

    @property
    def checked_points(self) -> int:
        return sum(r.max_points for r in self.results if not r.skipped)


def public_checks():
    return [check for check in CHECKS if not check.hidden]


def load_for_self_check(notebook: str | Path, *, full: bool = False, data_dir=None):
    """The evidence for a student's own notebook, gathered in this process (it is their own code)."""
    from autograder.batch.steps import collect_in_process
    from autograder.data.inputs import ProbeInputs
    from autograder.data.reference import ReferenceData
    from autograder.judge.evidence import Evidence
    from autograder.trainer.fast_path import quiet_tensorflow

    quiet_tensorflow()
    data = ReferenceData.load(data_dir)
    artifacts, training = collect_in_process(
        Path(notebook), ProbeInputs.from_reference(data), train=full, test_images=data.test_images
    )
    return Evidence(artifacts, data, training)


def self_check(notebook: str | Path, *, full: bool = False, data_dir=None) -> SelfCheckReport:
    evidence = load_for_self_check(notebook, full=full, data_dir=data_dir)
    results = [
        run_check(check, evidence) if full or not check.needs_training else skipped(check, f"skipped: {FULL_HINT}")
        for check in public_checks()
    ]
    hidden = sum(check.points for check in CHECKS if check.hidden)
    from autograder.batch.steps import lint_notes

    return SelfCheckReport(str(notebook), results, hidden, lint_notes(Path(notebook)))


def format_self_check(report: SelfCheckReport) -> str:
    from autograder.reports.text import format_check

    lines = [f"Self-check of {report.notebook} (public checks)"]
    lines.extend(format_check(result) for result in report.results)
    not_done = [r.id for r in report.results if r.not_done]
    failed = [r.id for r in report.results if not r.passed and not r.skipped and not r.not_done]
    skipped_ids = [r.id for r in report.results if r.skipped]
    lines.append(f"Score on the checks run: {report.score}/{report.checked_points}")
    if not_done:
        lines.append(f"Not done yet: {', '.join(not_done)}.")
    if failed:
        lines.append(f"To fix: {', '.join(failed)} (read the messages above).")
    if skipped_ids:
        lines.append(f"Skipped: {', '.join(skipped_ids)}; {FULL_HINT}.")
    lines.extend(f"Note: {note}" for note in report.notes)
    lines.append(
        f"Hidden checks ({report.hidden_points} points, such as the test accuracy) run only when your work is graded."
    )
    return "\n".join(lines)
