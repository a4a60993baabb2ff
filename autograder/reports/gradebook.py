"""Write the kit's grades into nbgrader's gradebook, so that `nbgrader export` and formgrader show them.

The gradebook must already know the assignment (``nbgrader generate_assignment`` records it, with
one grade cell per check, ``check_<id>``). Each submission goes under its student, as every
output does (``autograder.batch.local.student_key``: the folder in nbgrader's layout).
"""

from __future__ import annotations

from pathlib import Path

from autograder.assignment import ASSIGNMENT_ID, NOTEBOOK_NAME


def write_nbgrader_gradebook(reports, db_url: str) -> None:
    import warnings

    from nbgrader.api import Gradebook, MissingEntry
    from sqlalchemy.exc import SAWarning

    from autograder.batch.local import student_of

    notebook = Path(NOTEBOOK_NAME).stem
    # nbgrader's own add_submission makes SQLAlchemy warn about its autoflush; it is harmless there.
    with warnings.catch_warnings(), Gradebook(db_url) as gradebook:
        warnings.simplefilter("ignore", SAWarning)
        gradebook.find_assignment(ASSIGNMENT_ID)  # MissingEntry: run generate_assignment first
        for report in reports:
            student = student_of(report)
            gradebook.update_or_create_student(student)
            try:
                gradebook.find_submission(ASSIGNMENT_ID, student)
            except MissingEntry:
                gradebook.add_submission(ASSIGNMENT_ID, student)
            for result in report.checks:
                grade = gradebook.find_grade(f"check_{result.id}", notebook, ASSIGNMENT_ID, student)
                grade.auto_score = result.points
                grade.manual_score = None
            gradebook.db.commit()
