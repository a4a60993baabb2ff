"""Every per-submission output is keyed by the student: nbgrader's layout names them, two students'
notebooks of the same name keep two of everything, odd names stay inside the output folder, and
nbgrader's own release_feedback finds each page the kit wrote."""

from __future__ import annotations

import contextlib
import csv
import json
import os
import shutil
import types
from pathlib import Path

import pytest

from autograder.assignment import ASSIGNMENT_ID, NOTEBOOK_NAME, REPO_ROOT
from autograder.cli import main
from autograder.judge.checks import CHECKS

STEM = Path(NOTEBOOK_NAME).stem


def report_for(path, index: int = 0, *, error=None):
    """A report as the judge makes it, different per submission (``index``) without training anything."""
    from autograder.judge.evidence import CheckResult
    from autograder.judge.report import GradeReport

    checks = []
    for number, check in enumerate(CHECKS):
        passed = error is None and (index + number) % 3 != 0
        message = "fine" if passed else f"{check.id} is wrong: got {index * 7 + number}, expected '{check.id}'"
        checks.append(CheckResult(check.id, check.points if passed else 0, check.points, passed, message))
    accurate = 800 + 10 * index
    confusion = [[accurate if i == j else (1000 - accurate) // 9 for j in range(10)] for i in range(10)]
    return GradeReport(str(path), sum(c.points for c in checks), 100, error, checks,
                       history={"loss": [0.9, 0.5 - index / 100]}, confusion=None if error else confusion,
                       usage={"seconds": 3.0 + index, "sandbox_peak_memory_mib": 800 + 5 * index})


@pytest.fixture
def fast_grading(monkeypatch):
    """`autograder grade` as it is, but each submission's grading is a made-up report: the paths,
    the students and every output are the kit's own."""
    import autograder.batch.local

    graded = []

    def grade_submission(path, batch):
        graded.append(path)
        return report_for(path, len(graded), error="the notebook is not valid JSON" if "broken" in str(path) else None)

    @contextlib.contextmanager
    def open_batch(**kwargs):
        yield types.SimpleNamespace(sandbox=False, stopping=False)

    monkeypatch.setattr(autograder.batch.local, "grade_submission", grade_submission)
    monkeypatch.setattr(autograder.batch.local, "open_batch", open_batch)
    return graded


def nbgrader_class(root: Path, students) -> Path:
    """``root/submitted/<student>/fashion_mnist/fashion_mnist_classifier.ipynb`` for each, with the
    receipts nbgrader's collect leaves beside it."""
    for student in students:
        folder = root / "submitted" / student / ASSIGNMENT_ID
        folder.mkdir(parents=True)
        (folder / NOTEBOOK_NAME).write_text("{}")
        (folder / "timestamp.txt").write_text("2024-03-01 10:00:00.000000 UTC")
        (folder / "submission_secret.txt").write_bytes(os.fsencode(f"secret-of-{student}"))
    return root / "submitted"


def outputs_of(tmp_path: Path) -> dict[str, Path]:
    return {"json": tmp_path / "grades.json", "csv": tmp_path / "grades.csv", "gradescope": tmp_path / "gradescope",
            "feedback": tmp_path / "feedback", "class-report": tmp_path / "class.html"}


def grade(paths, tmp_path: Path) -> tuple[int, dict[str, Path]]:
    outputs = outputs_of(tmp_path)
    argv = ["grade", *map(str, paths), "--unsandboxed", "--results", str(tmp_path / "results"),
            *(arg for name, path in outputs.items() for arg in (f"--{name}", str(path)))]
    return main(argv), outputs


# --- Who a submission belongs to ------------------------------------------------------------------------------

def test_the_student_is_nbgrader_s_folder_else_the_path_inside_the_folder_graded(tmp_path):
    from autograder.batch.local import expand_submissions

    submitted = nbgrader_class(tmp_path / "course", ["alice", "bob"])
    loose = tmp_path / "loose"
    for name in ("carol/hw.ipynb", "dave.ipynb", "eve/hw.ipynb"):
        (loose / name).parent.mkdir(parents=True, exist_ok=True)
        (loose / name).write_text("{}")
    assert [student for _, student in expand_submissions([submitted])] == ["alice", "bob"]
    assert [student for _, student in expand_submissions([loose])] == ["carol/hw", "dave", "eve/hw"]
    # nbgrader's layout whatever is given: the course, one student's folder, the notebook itself.
    assert expand_submissions([submitted / "bob"])[0][1] == "bob"
    assert expand_submissions([submitted / "bob" / ASSIGNMENT_ID / NOTEBOOK_NAME])[0][1] == "bob"
    # Files: their path inside the deepest folder holding them all (one file: its stem).
    assert [s for _, s in expand_submissions([loose / "carol/hw.ipynb", loose / "eve/hw.ipynb"])] == [
        "carol/hw", "eve/hw"]
    assert expand_submissions([loose / "dave.ipynb"]) == [(loose / "dave.ipynb", "dave")]


def test_two_students_with_the_same_notebook_name_get_two_of_every_output(tmp_path, fast_grading):
    submitted = nbgrader_class(tmp_path, ["alice", "bob"])
    status, outputs = grade([submitted], tmp_path)
    assert status == 0 and len(fast_grading) == 2

    graded = json.loads(outputs["json"].read_text())
    assert [(entry["student"], entry["submission"]) for entry in graded] == [
        ("alice", str(submitted / "alice" / ASSIGNMENT_ID / NOTEBOOK_NAME)),
        ("bob", str(submitted / "bob" / ASSIGNMENT_ID / NOTEBOOK_NAME)),
    ]
    assert graded[0]["score"] != graded[1]["score"]  # two different reports, not one written twice
    with open(outputs["csv"], newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [(row["student"], int(row["score"])) for row in rows] == [(e["student"], e["score"]) for e in graded]
    for entry in graded:
        student = entry["student"]
        results = json.loads((outputs["gradescope"] / student / ASSIGNMENT_ID / STEM / "results.json").read_text())
        assert results["score"] == entry["score"]
        page = (outputs["feedback"] / student / ASSIGNMENT_ID / f"{STEM}.html").read_text()
        assert f"Feedback for <span class=\"student\">{student}</span>" in page
        assert f"<span class=\"score\">{entry['score']}</span>" in page
        # What nbgrader's release_feedback reads beside the page.
        assert (outputs["feedback"] / student / ASSIGNMENT_ID / "submission_secret.txt").read_text() == (
            f"secret-of-{student}")
    assert len(list(outputs["gradescope"].rglob("results.json"))) == 2
    assert len(list(outputs["feedback"].rglob("*.html"))) == 2


def test_ten_students_get_ten_pages_ten_gradescope_results_ten_rows_and_one_class_overview(tmp_path, fast_grading):
    students = [f"student{number:02}" for number in range(9)] + ["broken"]
    status, outputs = grade([nbgrader_class(tmp_path, students)], tmp_path)
    assert status == 0 and len(fast_grading) == 10
    pages = sorted(outputs["feedback"].rglob("*.html"))
    assert pages == [outputs["feedback"] / s / ASSIGNMENT_ID / f"{STEM}.html" for s in sorted(students)]
    assert sorted(p.parent.parent.parent.name for p in outputs["gradescope"].rglob("results.json")) == sorted(students)
    with open(outputs["csv"], newline="") as handle:
        assert sorted(row["student"] for row in csv.DictReader(handle)) == sorted(students)
    overview = outputs["class-report"].read_text()
    assert "10 submissions: 9 graded, 1 could not be graded." in overview
    assert all(f"<td>{student}</td>" in overview for student in students)
    assert overview.count("<img ") >= 4


# --- Names that would collide or escape ----------------------------------------------------------------------

def test_two_submissions_that_would_share_their_outputs_are_refused_before_grading(tmp_path, fast_grading, capsys):
    first = nbgrader_class(tmp_path / "one", ["alice"])
    second = nbgrader_class(tmp_path / "two", ["alice"])
    status, outputs = grade([first, second], tmp_path)
    assert status != 0 and fast_grading == []
    err = capsys.readouterr().err
    assert "both student 'alice'" in err and str(second / "alice") in err
    assert not outputs["feedback"].exists()
    # Names that differ only where a file name cannot: the same.
    assert grade([nbgrader_class(tmp_path / "three", ["a b", "a_b"])], tmp_path)[0] != 0
    # The same file given twice is no collision.
    notebook = first / "alice" / ASSIGNMENT_ID / NOTEBOOK_NAME
    assert grade([notebook, first], tmp_path)[0] == 0


def test_a_writer_never_overwrites_one_submission_s_file_with_another_s(tmp_path):
    from autograder.errors import OutputError
    from autograder.reports.feedback import write_feedback
    from autograder.reports.formats import write_gradescope

    reports = [report_for(f"/a/submitted/alice/{ASSIGNMENT_ID}/{NOTEBOOK_NAME}", 1),
               report_for(f"/b/submitted/alice/{ASSIGNMENT_ID}/{NOTEBOOK_NAME}", 2)]
    for write in (write_feedback, write_gradescope):
        with pytest.raises(OutputError, match="not written for /b/submitted.*it is /a/submitted"):
            write(reports, tmp_path / write.__name__)
    page = (tmp_path / "write_feedback" / "alice" / ASSIGNMENT_ID / f"{STEM}.html").read_text()
    assert f">{reports[0].score}</span>" in page


@pytest.mark.parametrize("student", ["..", ".", "../../outside", "", ".hidden", "a\\b", "x\x00y", "<b>é\udcff</b>",
                                     "ü" * 300])
def test_a_student_s_name_never_writes_outside_the_output_folder(tmp_path, student):
    from autograder.reports.class_report import write_class_report
    from autograder.reports.feedback import write_feedback
    from autograder.reports.formats import write_gradescope

    report = report_for(f"/course/submitted/x/{ASSIGNMENT_ID}/{NOTEBOOK_NAME}", 1)
    report.student = student
    out = tmp_path / "out"
    written = write_feedback([report], out / "feedback") + write_gradescope([report], out / "gradescope")
    for path in written:
        assert path.resolve().is_relative_to(out.resolve()) and path.is_file()
        assert all(not part.startswith(".") and len(part.encode()) <= 255 for part in path.relative_to(out).parts)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]
    page = written[0].read_text()
    assert "<b>" not in page  # the name is shown escaped, never as markup
    write_class_report([report], out / "class.html")
    assert "<b>" not in (out / "class.html").read_text()


def test_odd_student_folders_in_nbgrader_s_layout_are_graded_into_safe_places(tmp_path, fast_grading):
    students = ["...", "..hidden", "a b$(x)", os.fsdecode(b"caf\xe9")]
    status, outputs = grade([nbgrader_class(tmp_path, students)], tmp_path)
    assert status == 0
    graded = json.loads(outputs["json"].read_text())
    assert [entry["student"] for entry in graded] == sorted(students)  # as nbgrader names them
    pages = list(outputs["feedback"].rglob("*.html"))
    assert len(pages) == 4 and all(p.resolve().is_relative_to(outputs["feedback"].resolve()) for p in pages)
    assert sorted(p.relative_to(outputs["feedback"]).parts[0] for p in pages) == [
        "_...", "_..hidden", "a_b__x_", "caf_"]


# --- nbgrader's own release_feedback ---------------------------------------------------------------------------

def test_nbgrader_s_release_feedback_releases_each_student_s_page(tmp_path, fast_grading):
    from nbgrader.utils import notebook_hash
    from test_nbgrader import nbgrader

    course = tmp_path / "course"
    course.mkdir()
    shutil.copy(REPO_ROOT / "nbgrader_config.py", course / "nbgrader_config.py")
    submitted = nbgrader_class(course, ["alice", "bob"])
    assert main(["grade", str(submitted), "--unsandboxed", "--results", str(tmp_path / "results"),
                 "--feedback", str(course / "feedback")]) == 0
    exchange = tmp_path / "exchange"
    exchange.mkdir()
    nbgrader(course, "release_feedback", ASSIGNMENT_ID, "--CourseDirectory.course_id=course101",
             f"--Exchange.root={exchange}")
    released = exchange / "course101" / "feedback"
    assert len(list(released.glob("*.html"))) == 2
    for student in ("alice", "bob"):
        page = released / f"{notebook_hash(secret=f'secret-of-{student}', notebook_id=STEM)}.html"
        assert f"Feedback for <span class=\"student\">{student}</span>" in page.read_text()
