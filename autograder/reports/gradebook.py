"""Write the kit's grades into nbgrader's gradebook, so that `nbgrader export` and formgrader show them.

The gradebook must already know the assignment (``nbgrader generate_assignment`` records it, with
one grade cell per check, ``check_<id>``). Each student's notebook of the assignment's name in
nbgrader's layout goes under its student (``autograder.batch.local.student_key``); a student with two
is refused, never one silently overwriting the other.
"""

from __future__ import annotations

import string
from pathlib import Path

from autograder.assignment import ASSIGNMENT_ID, NOTEBOOK_NAME


def sqlite_file(url: str | None) -> Path | None:
    """The file of an nbgrader gradebook kept in SQLite, as SQLAlchemy reads its URL (``sqlite:///FILE``,
    with its options and escapes): every student's grades, which no sandbox may read. None for another
    database."""
    if not url:
        return None
    try:
        from sqlalchemy.engine import make_url
    except ImportError:  # without nbgrader's extra: no gradebook will be written either
        return Path(url.removeprefix("sqlite:///")) if url.startswith("sqlite:///") else None
    try:
        parsed = make_url(url)
    except Exception:  # not a URL SQLAlchemy reads: nbgrader will say so
        return None
    if parsed.get_backend_name().lower() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return None
    return Path(parsed.database)


def check_gradebook(db_url: str) -> None:
    """Refuse (GradebookNotReady) an SQLite gradebook that does not exist or does not record the
    assignment, read without writing: nbgrader would make tables in any file it is given, then need
    the `alembic` command, and leave a gradebook that generate_assignment trips on."""
    import contextlib
    import sqlite3

    from autograder.errors import GradebookNotReady
    from autograder.text import terminal_text

    file = sqlite_file(db_url)
    if file is None:
        return
    found = None
    if file.is_file():
        with contextlib.suppress(sqlite3.Error, OSError, ValueError):
            with contextlib.closing(sqlite3.connect(f"{file.resolve().as_uri()}?mode=ro", uri=True)) as db:
                found = db.execute("SELECT 1 FROM assignment WHERE name = ?", (ASSIGNMENT_ID,)).fetchone()
    if not found:
        raise GradebookNotReady(terminal_text(str(file)), ASSIGNMENT_ID)


def official_reports(reports) -> dict[str, list]:
    """Each student's reports of their notebook of the assignment's name, in nbgrader's layout
    (``submitted/<student>/fashion_mnist/fashion_mnist_classifier.ipynb``): what a gradebook records."""
    from autograder.batch.local import nbgrader_place, student_of

    found: dict[str, list] = {}
    for report in reports:
        student = student_of(report)
        if Path(report.submission).name == NOTEBOOK_NAME and nbgrader_place(report.submission, student) == (
            student, ASSIGNMENT_ID
        ):
            found.setdefault(student, []).append(report)
    return found


def gradebook_entries(reports) -> tuple[dict[str, object], list[str]]:
    """The report to record for each student: only their notebook of the assignment's name in nbgrader's
    layout counts (a scratch notebook beside it, or a layout copied into their folder, is no grade), and a
    student with two such reports (the same student in two folders) gets neither: the refusals, named."""
    from autograder.text import lookalike_id, terminal_text

    found = official_reports(reports)
    refused = [f"student {terminal_text(repr(student))}: not written: {len(found[student])} submissions "
               f"({', '.join(terminal_text(r.submission) for r in found[student])})"
               for student in found if len(found[student]) > 1]
    # A folder named with bytes that are not UTF-8, with controls or invisible characters: no student id nbgrader
    # could have made, and one that could show as a classmate's.
    refused += [f"student {terminal_text(repr(student))}: not written: the folder's name is no nbgrader student id"
                for student in found if len(found[student]) == 1 and lookalike_id(student)]
    refused += [f"student {terminal_text(repr(student))}: not written: the folder's name would forge columns, a "
                "formula or markup in `nbgrader export` or formgrader (punctuation other than . _ @ + - and single "
                "spaces, or = + - @ first)" for student in found
                if len(found[student]) == 1 and not lookalike_id(student) and forges_nbgrader(student)]
    return {student: found[student][0] for student in found
            if len(found[student]) == 1 and not lookalike_id(student) and not forges_nbgrader(student)}, refused


# nbgrader's CSV export joins its columns with commas and quotes nothing, a spreadsheet runs a cell that starts with
# = + - @, and formgrader's pages put an id into HTML, scripts and links unescaped: of ASCII, an id a student names
# their folder may hold only letters, digits, . _ @ + - and spaces (other scripts' letters are lookalike_id's).
_ID_ASCII = frozenset(string.ascii_letters + string.digits + "._@+- ")


def forges_nbgrader(student: str) -> bool:
    return student[:1] in ("=", "+", "-", "@") or any(char < "\x80" and char not in _ID_ASCII for char in student)


def record(gradebook, notebook: str, student: str, report, missing: type) -> None:
    """One student's points, check by check, committed."""
    for result in report.checks:  # before anything is written: nbgrader takes a score above its cell's maximum
        cell = gradebook.find_grade_cell(f"check_{result.id}", notebook, ASSIGNMENT_ID)
        if cell.max_score != result.max_points:
            raise ValueError(f"check_{result.id} is worth {cell.max_score:g} points in the gradebook and "
                             f"{result.max_points} in this grading: grade with the points the assignment was "
                             "generated with, or generate it again with these (nbgrader generate_assignment --force)")
    gradebook.update_or_create_student(student)
    try:
        gradebook.find_submission(ASSIGNMENT_ID, student)
    except missing:
        gradebook.add_submission(ASSIGNMENT_ID, student)
    for result in report.checks:
        grade = gradebook.find_grade(f"check_{result.id}", notebook, ASSIGNMENT_ID, student)
        grade.auto_score = result.points
        grade.manual_score = None
    gradebook.db.commit()


def write_nbgrader_gradebook(reports, db_url: str) -> None:
    import warnings

    from nbgrader.api import Gradebook, MissingEntry
    from sqlalchemy.exc import SAWarning

    from autograder.errors import GradebookNotReady, OutputError
    from autograder.text import terminal_text

    check_gradebook(db_url)
    notebook = Path(NOTEBOOK_NAME).stem
    entries, refused = gradebook_entries(reports)
    # nbgrader's own add_submission makes SQLAlchemy warn about its autoflush; it is harmless there.
    with warnings.catch_warnings(), Gradebook(db_url) as gradebook:
        warnings.simplefilter("ignore", SAWarning)
        try:
            gradebook.find_assignment(ASSIGNMENT_ID)
        except MissingEntry:
            raise GradebookNotReady(terminal_text(db_url), ASSIGNMENT_ID) from None
        for student, report in entries.items():
            try:
                record(gradebook, notebook, student, report, MissingEntry)
            except Exception as error:  # one student's entry the database refuses costs only that entry
                gradebook.db.rollback()
                refused.append(f"student {terminal_text(repr(student))}: not written: {type(error).__name__}: "
                               f"{terminal_text(str(error)[:300])}")
    if refused:
        raise OutputError("nbgrader gradebook", refused, [])
