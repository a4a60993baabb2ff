"""Reports written from the grade reports: the contract's JSON, a CSV gradebook, Gradescope's results.json.

Every one of them is made from the same ``GradeReport`` objects, so they cannot disagree.

Every JSON file is strict JSON, which any parser reads: a non-finite number (a student's NaN or
infinity) is written as the string "NaN", "Infinity" or "-Infinity" (``autograder.judge.report.json_safe``),
never as the bare tokens Python's ``json`` would write and other parsers reject. The CSV spells them
the same way. Every file is written atomically (``autograder.files.atomic_write``).
"""

from __future__ import annotations

import csv
import json
import math
import numbers
from pathlib import Path

from autograder.errors import OutputError
from autograder.files import atomic_write
from autograder.judge.checks import CHECKS_BY_ID
from autograder.judge.report import json_safe, non_finite_text
from autograder.text import cell_text, terminal_text


def json_text(value) -> str:
    return json.dumps(json_safe(value), indent=2, allow_nan=False) + "\n"


FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value):
    """A cell a spreadsheet shows as written: text that a spreadsheet would read as a formula (a student's
    folder named ``=HYPERLINK(...)``) starts with ``'``, as OWASP advises; controls are shown as escapes
    (``autograder.text.cell_text``); numbers stay numbers."""
    if isinstance(value, str):
        text = cell_text(value)
        return f"'{text}" if text.startswith(FORMULA_STARTS) else text
    if isinstance(value, numbers.Real) and not isinstance(value, numbers.Integral) and not math.isfinite(value):
        return non_finite_text(float(value))
    return value


def write_json(reports, path: Path) -> None:
    """The contract's report: a JSON array, one object per submission, in the order graded."""
    from autograder.batch.local import student_of

    atomic_write(path, json_text([{**report.to_json(), "student": student_of(report)} for report in reports]))


def write_csv(reports, path: Path) -> None:
    """A gradebook for a spreadsheet: one row per submission, the points of each check in its column.
    It starts with a byte-order mark: without one, Excel reads a UTF-8 file in the system's code page
    (GBK on a Chinese Windows) and garbles Chinese names and messages; Python reads it with ``utf-8-sig``."""
    import io

    from autograder.batch.local import student_of

    ids = list(CHECKS_BY_ID)
    buffer = io.StringIO()
    buffer.write("\ufeff")
    writer = csv.writer(buffer)
    writer.writerow(["student", "submission", "score", "max_score", "error", *ids])
    for report in reports:
        points = {result.id: result.points for result in report.checks}
        # A name and a path are one line each (escaped like a terminal's); only the error keeps its lines.
        row = [terminal_text(student_of(report)), terminal_text(report.submission), report.score, report.max_score,
               report.error or "",
               *(points.get(i, 0) for i in ids)]
        writer.writerow([csv_cell(cell) for cell in row])
    atomic_write(path, buffer.getvalue())


def leaderboard(report) -> dict:
    """Gradescope's leaderboard: the test accuracy the grader measured (``GradeReport.test_accuracy``, as on
    the class overview), highest first; nothing when no model was measured."""
    accuracy = report.test_accuracy
    if accuracy is None:
        return {}
    return {"leaderboard": [{"name": "Test accuracy", "value": round(accuracy, 4), "order": "desc"}]}


def gradescope_results(report) -> dict:
    """Gradescope's autograder format: a test per check; hidden checks shown once grades are published;
    the test accuracy the grader measured on the leaderboard; the grader's log for the staff only.
    What a student reads is in the language the report was graded in; the keys, the test names (the
    check ids) and the leaderboard, which the whole class shares, are the same in every language."""
    from autograder.i18n import speaking

    with speaking(report.lang):
        return gradescope_fields(report)


def gradescope_fields(report) -> dict:
    from autograder.i18n import _

    seconds = report.usage.get("seconds")
    finite = isinstance(seconds, numbers.Real) and math.isfinite(seconds)
    # execution_time is a number for Gradescope: left out when the time is not one.
    timing = {"execution_time": round(seconds)} if finite else {}
    return {
        "score": report.score,
        "max_score": report.max_score,
        **timing,
        **leaderboard(report),
        "stdout_visibility": "hidden",  # the log names every check's result, hidden ones included
        # Plain text, as every other output shows a student's words: no HTML, Markdown or terminal codes run.
        "output_format": "text",
        "test_output_format": "text",
        "output": cell_text(_("Could not be graded: {error}").format(error=report.error)) if report.error else "",
        "tests": [
            {
                "name": result.id,
                "score": result.points,
                "max_score": result.max_points,
                "status": "passed" if result.passed else "failed",
                "output": cell_text(result.message),
                "visibility": "after_published" if CHECKS_BY_ID[result.id].hidden else "visible",
            }
            for result in report.checks
        ],
    }


def write_each(reports, path_of, text_of, what: str) -> list[Path]:
    """One file per submission, at ``path_of(report, place)`` (``place``: ``report_places``). One that cannot
    be written never stops the others: they are all written, and then ``OutputError`` names the rest
    (``what``: the outputs, for the message), those whose place clashes with another's among them."""
    from autograder.batch.local import report_places

    places = report_places(list(reports))
    written, failed = [], []
    taken: dict[Path, str] = {}
    for report in reports:
        place = places[id(report)]
        if place is None:
            failed.append(f"{terminal_text(report.submission)}: not written: its student's outputs would share a "
                          "place with another submission's (grade it in a separate run)")
            continue
        path = path_of(report, place)
        other = taken.setdefault(path, report.submission)
        if other != report.submission:  # never one submission's file overwritten by another's
            failed.append(f"{terminal_text(path)}: not written for {terminal_text(report.submission)}: "
                          f"it is {terminal_text(other)}'s")
            continue
        try:
            atomic_write(path, text_of(report, path))
        except Exception as error:
            failed.append(f"{terminal_text(path)}: {type(error).__name__}: {terminal_text(error)}")
        else:
            written.append(path)
    if failed:
        raise OutputError(what, failed, written)
    return written


def write_gradescope(reports, folder: Path) -> list[Path]:
    """One ``results.json`` per submission, in ``<student>/<assignment>/<notebook>/`` under ``folder``."""
    return write_each(
        reports, lambda report, place: folder / place / "results.json",
        lambda report, path: json_text(gradescope_results(report)), "Gradescope results",
    )
