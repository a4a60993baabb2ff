"""Reports written from the grade reports: the contract's JSON, a CSV gradebook, Gradescope's results.json.

Every one of them is made from the same ``GradeReport`` objects, so they cannot disagree.

Every JSON file is strict JSON, which any parser reads: a non-finite number (a student's NaN or
infinity) is written as the string "NaN", "Infinity" or "-Infinity" (``json_safe``), never as the
bare tokens Python's ``json`` would write and other parsers reject. The CSV spells them the same way.
"""

from __future__ import annotations

import csv
import json
import math
import numbers
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path

from autograder.judge.checks import CHECKS_BY_ID
from autograder.errors import AutograderError


class OutputError(AutograderError):
    """Some of an output's files could not be written; the others were."""

    def __init__(self, what: str, failures: list[str], written: list[Path] = ()):
        self.failures, self.written = list(failures), list(written)
        shown = "; ".join(self.failures[:3]) + (f"; and {len(self.failures) - 3} more" if len(self.failures) > 3 else "")
        total = len(self.failures) + len(self.written)
        super().__init__(f"{what}: {len(self.failures)} of {total} not written (the others were): {shown}")


def non_finite_text(value: float) -> str:
    return "NaN" if math.isnan(value) else "Infinity" if value > 0 else "-Infinity"


def json_safe(value):
    """``value`` made fit for strict JSON: each NaN, inf or -inf (at any depth) becomes the string
    "NaN", "Infinity" or "-Infinity"; tuples and NumPy arrays become lists, NumPy scalars Python
    numbers. Write it with ``json.dumps(json_safe(value), allow_nan=False)``."""
    if value is None or isinstance(value, (str, bool)):
        return value
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        value = float(value)
        return value if math.isfinite(value) else non_finite_text(value)
    if isinstance(value, Mapping):
        return {json_safe(key) if isinstance(key, float) else key: json_safe(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(item) for item in value]
    if hasattr(value, "tolist"):  # a NumPy array
        return json_safe(value.tolist())
    return value


def json_text(value) -> str:
    return json.dumps(json_safe(value), indent=2, allow_nan=False) + "\n"


def csv_cell(value):
    if isinstance(value, numbers.Real) and not isinstance(value, numbers.Integral) and not math.isfinite(value):
        return non_finite_text(float(value))
    return value


def atomic_write(path: Path, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path``: a reader sees the old file or the new, never half of one,
    and the new one is on the disk before it replaces the old."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(
        "w", dir=path.parent, prefix=".tmp-", delete=False, newline="", encoding="utf-8"
    ) as handle:
        try:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        except BaseException:
            handle.close()
            os.unlink(handle.name)
            raise
    try:
        os.replace(handle.name, path)
    except BaseException:
        os.unlink(handle.name)
        raise


def write_json(reports, path: Path) -> None:
    """The contract's report: a JSON array, one object per submission, in the order graded."""
    atomic_write(path, json_text([report.to_json() for report in reports]))


def write_csv(reports, path: Path) -> None:
    """A gradebook for a spreadsheet: one row per submission, the points of each check in its column."""
    import io

    ids = list(CHECKS_BY_ID)
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["submission", "score", "max_score", "error", *ids])
    for report in reports:
        points = {result.id: result.points for result in report.checks}
        row = [report.submission, report.score, report.max_score, report.error or "", *(points.get(i, 0) for i in ids)]
        writer.writerow([csv_cell(cell) for cell in row])
    atomic_write(path, buffer.getvalue())


def gradescope_results(report) -> dict:
    """Gradescope's autograder format: a test per check; hidden checks shown once grades are published."""
    seconds = report.usage.get("seconds")
    finite = isinstance(seconds, numbers.Real) and math.isfinite(seconds)
    # execution_time is a number for Gradescope: left out when the time is not one.
    timing = {"execution_time": round(seconds)} if finite else {}
    return {
        "score": report.score,
        "max_score": report.max_score,
        **timing,
        "output": f"Could not be graded: {report.error}" if report.error else "",
        "tests": [
            {
                "name": result.id,
                "score": result.points,
                "max_score": result.max_points,
                "status": "passed" if result.passed else "failed",
                "output": result.message,
                "visibility": "after_published" if CHECKS_BY_ID[result.id].hidden else "visible",
            }
            for result in report.checks
        ],
    }


def write_each(reports, path_of, text_of, what: str) -> list[Path]:
    """One file per submission. One that cannot be written never stops the others: they are all
    written, and then ``OutputError`` names the rest (``what``: the outputs, for the message)."""
    written, failed = [], []
    for report in reports:
        path = path_of(report)
        try:
            atomic_write(path, text_of(report))
        except Exception as error:
            failed.append(f"{path}: {type(error).__name__}: {error}")
        else:
            written.append(path)
    if failed:
        raise OutputError(what, failed, written)
    return written


def write_gradescope(reports, folder: Path) -> list[Path]:
    """One ``results.json`` per submission, in a folder named after the notebook."""
    return write_each(
        reports, lambda report: folder / Path(report.submission).stem / "results.json",
        lambda report: json_text(gradescope_results(report)), "Gradescope results",
    )
