"""Reports written from the grade reports: the contract's JSON, a CSV gradebook, Gradescope's results.json.

Every one of them is made from the same ``GradeReport`` objects, so they cannot disagree.
"""

from __future__ import annotations

import csv
import json
import os
import tempfile
from pathlib import Path

from autograder.checks import CHECKS_BY_ID


def atomic_write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile("w", dir=path.parent, prefix=".tmp-", delete=False, newline="") as handle:
        handle.write(text)
    os.replace(handle.name, path)


def write_json(reports, path: Path) -> None:
    """The contract's report: a JSON array, one object per submission, in the order graded."""
    atomic_write(path, json.dumps([report.to_json() for report in reports], indent=2) + "\n")


def write_csv(reports, path: Path) -> None:
    """A gradebook for a spreadsheet: one row per submission, the points of each check in its column."""
    import io

    ids = list(CHECKS_BY_ID)
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["submission", "score", "max_score", "error", *ids])
    for report in reports:
        points = {result.id: result.points for result in report.checks}
        writer.writerow([report.submission, report.score, report.max_score, report.error or "", *(points.get(i, 0) for i in ids)])
    atomic_write(path, buffer.getvalue())


def gradescope_results(report) -> dict:
    """Gradescope's autograder format: a test per check; hidden checks shown once grades are published."""
    timing = {"execution_time": round(report.usage["seconds"])} if "seconds" in report.usage else {}
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


def write_gradescope(reports, folder: Path) -> list[Path]:
    """One ``results.json`` per submission, in a folder named after the notebook."""
    written = []
    for report in reports:
        path = folder / Path(report.submission).stem / "results.json"
        atomic_write(path, json.dumps(gradescope_results(report), indent=2) + "\n")
        written.append(path)
    return written
