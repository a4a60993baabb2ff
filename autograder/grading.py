"""Grading: a notebook in, a report out — every check run, points from the table, faults as results.

``grade_notebooks`` grades many notebooks one after another; one that cannot be loaded or whose
code crashes gets ``error`` and score 0, and the others are still graded.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

from autograder.assignment import FUNCTIONS
from autograder.checks import CHECKS, MAX_SCORE, CheckResult, Submission, describe_exception, run_check, skipped
from autograder.errors import AutograderError, NotebookError


@dataclass
class GradeReport:
    submission: str
    score: int
    max_score: int
    error: str | None
    checks: list[CheckResult]
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> dict:
        # Exactly the fields of the contract.
        return {
            "submission": self.submission,
            "score": self.score,
            "max_score": self.max_score,
            "error": self.error,
            "checks": [result.to_json() for result in self.checks],
        }


def expand_paths(paths: Iterable[str | Path]) -> list[Path]:
    """Files as given; folders become the notebooks inside them (checkpoints left out), sorted."""
    found: list[Path] = []
    for path in map(Path, paths):
        if path.is_dir():
            found.extend(
                sorted(p for p in path.rglob("*.ipynb") if ".ipynb_checkpoints" not in p.parts and p.is_file())
            )
        else:
            found.append(path)
    return found


def ungraded(path: Path, reason: str) -> GradeReport:
    checks = [CheckResult(c.id, 0, c.points, False, f"not graded: {reason}") for c in CHECKS]
    return GradeReport(str(path), 0, MAX_SCORE, reason, checks)


def prepare_submission(path: Path, data, *, cache=None, progress=None) -> Submission:
    """Load a notebook's functions into a Submission whose training runs on first use."""
    from autograder.notebook import run_cells
    from autograder.training import train_submission

    loaded = run_cells(path)
    functions = {name: loaded.function(name) for name in FUNCTIONS}

    def trainer(sub: Submission):
        return train_submission(
            sub.functions, sub.data, progress=progress, cache=cache, name=str(path), describe_error=describe_exception
        )

    return Submission(functions, data, cell_errors=loaded.cell_errors, trainer=trainer, name=str(path))


def grade_notebook(path: Path, data, *, cache=None, progress=None) -> GradeReport:
    """Every check, public and hidden, with full training."""
    try:
        sub = prepare_submission(path, data, cache=cache, progress=progress)
    except NotebookError as error:
        return ungraded(path, error.problem)
    results = [run_check(check, sub) for check in CHECKS]
    report = GradeReport(str(path), sum(r.points for r in results), MAX_SCORE, None, results)
    run = sub._training
    if run is not None and run.reused_from:
        report.notes.append(
            f"training result reused from {run.reused_from}: identical model, initial weights, compile "
            "settings, training arguments, data and seed"
        )
    return report


def grade_notebooks(paths: Iterable[str | Path], *, data_dir=None, out=None) -> list[GradeReport]:
    from autograder.reference import ReferenceData
    from autograder.training import TrainingCache, quiet_tensorflow

    quiet_tensorflow()
    notebooks = expand_paths(paths)
    if not notebooks:
        raise AutograderError("no notebooks to grade: give .ipynb files or folders that hold them")
    data = ReferenceData.load(data_dir)
    cache = TrainingCache()
    reports = []
    for number, path in enumerate(notebooks, start=1):
        if out:
            print(f"[{number}/{len(notebooks)}] grading {path}", file=out, flush=True)
        try:
            report = grade_notebook(path, data, cache=cache)
        except Exception as error:  # a fault of this submission must never stop the batch
            report = ungraded(path, f"the grader failed on this notebook: {type(error).__name__}: {error}")
        reports.append(report)
        if out:
            print(format_report(report), file=out, flush=True)
    return reports


STATUS = {"passed": "PASS", "failed": "FAIL", "not_done": "TODO", "skipped": "SKIP"}


def status(result: CheckResult) -> str:
    if result.skipped:
        return STATUS["skipped"]
    if result.not_done:
        return STATUS["not_done"]
    return STATUS["passed"] if result.passed else STATUS["failed"]


def format_check(result: CheckResult) -> str:
    points = f"{'-' if result.skipped else result.points}/{result.max_points}"
    return f"  {status(result)}  {result.id:<19}{points:>7}  {result.message}"


def format_report(report: GradeReport) -> str:
    lines = [f"{report.submission}: {report.score}/{report.max_score}"]
    if report.error:
        lines.append(f"  not graded: {report.error}")
    else:
        lines.extend(format_check(result) for result in report.checks)
    lines.extend(f"  note: {note}" for note in report.notes)
    return "\n".join(lines)
