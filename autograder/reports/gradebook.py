"""Write the kit's grades into nbgrader's gradebook, so that `nbgrader export` and formgrader show them.

The gradebook must already know the assignment (``nbgrader generate_assignment`` records it, with
one grade cell per check, ``check_<id>``). Each submission's student is read from nbgrader's
folder layout, ``submitted/<student>/<assignment>/<notebook>.ipynb``, or else is the notebook's name.
"""

from __future__ import annotations

from pathlib import Path

from autograder.assignment import ASSIGNMENT_ID, NOTEBOOK_NAME


def student_id(submission: str) -> str:
    path = Path(submission)
    if path.parent.name == ASSIGNMENT_ID and path.parent.parent.name:
        return path.parent.parent.name
    return path.stem


def write_nbgrader_gradebook(reports, db_url: str) -> None:
    import warnings

    from nbgrader.api import Gradebook, MissingEntry
    from sqlalchemy.exc import SAWarning

    notebook = Path(NOTEBOOK_NAME).stem
    # nbgrader's own add_submission makes SQLAlchemy warn about its autoflush; it is harmless there.
    with warnings.catch_warnings(), Gradebook(db_url) as gradebook:
        warnings.simplefilter("ignore", SAWarning)
        gradebook.find_assignment(ASSIGNMENT_ID)  # MissingEntry: run generate_assignment first
        for report in reports:
            student = student_id(report.submission)
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
