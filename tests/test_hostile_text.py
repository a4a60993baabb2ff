"""What a student's text can do to the outputs others read: the names of their folders, the messages their
code makes the checks say, the receipts in their folder. Each output keeps that text as data: the gradebook
is written for every other student, a spreadsheet, a terminal or a strict JSON reader sees no control
character, no forged line and no text longer than a message can be."""

from __future__ import annotations

import csv
import html
import json
import os
import sys
from pathlib import Path

import pytest

from autograder.assignment import ASSIGNMENT_ID, NOTEBOOK_NAME
from autograder.judge.checks import CHECKS

STEM = Path(NOTEBOOK_NAME).stem
# A folder named with bytes that are not UTF-8 (Python reads them as lone surrogates) and an escape sequence
# that sets a terminal's title.
UNDECODABLE = b"=1+1\x1b]0;OWNED\x07\xff".decode("utf-8", "surrogateescape")
HOSTILE = "\x1b[2J\x1b]52;c;cm0gLXJmIH4=\x07 \u202eevil\u2028forged\x85row \ud800 \x0bx\x0c"


def report_for(student: str, message: str = "fine", score_index: int = 0):
    from autograder.judge.evidence import CheckResult
    from autograder.judge.report import GradeReport

    checks = [CheckResult(c.id, c.points, c.points, True, message) for c in CHECKS]
    path = f"/course/submitted/{student}/{ASSIGNMENT_ID}/{NOTEBOOK_NAME}"
    return GradeReport(path, 100 - score_index, 100, None, checks, student=student)


@pytest.fixture
def gradebook(tmp_path, monkeypatch) -> str:
    from nbgrader.api import Gradebook

    # nbgrader runs alembic from PATH to create its gradebook, so the virtualenv's bin goes first.
    monkeypatch.setenv("PATH", f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")
    url = f"sqlite:///{tmp_path / 'gradebook.db'}"
    with Gradebook(url) as book:
        book.add_assignment(ASSIGNMENT_ID)
        book.add_notebook(STEM, ASSIGNMENT_ID)
        for check in CHECKS:
            book.add_grade_cell(f"check_{check.id}", STEM, ASSIGNMENT_ID, max_score=check.points, cell_type="code")
    return url


def test_a_folder_name_the_gradebook_cannot_hold_costs_only_its_own_entry(gradebook):
    from nbgrader.api import Gradebook

    from autograder.errors import OutputError
    from autograder.reports.gradebook import write_nbgrader_gradebook

    # Sorted first ("=" before letters), it used to stop the gradebook for every student after it.
    reports = [report_for(UNDECODABLE), report_for("alice"), report_for("bob")]
    with pytest.raises(OutputError) as refused:
        write_nbgrader_gradebook(reports, gradebook)
    assert "\\udcff" in str(refused.value) and "\x1b" not in str(refused.value)
    with Gradebook(gradebook) as book:
        assert sorted(student.id for student in book.students) == ["alice", "bob"]
        assert book.find_submission(ASSIGNMENT_ID, "bob").score == 100


def test_a_gradebook_entry_only_for_the_assignment_s_own_folder(gradebook):
    from nbgrader.api import Gradebook

    from autograder.reports.gradebook import write_nbgrader_gradebook

    other = report_for("alice")
    other.submission = f"/course/submitted/alice/hw2/{NOTEBOOK_NAME}"
    write_nbgrader_gradebook([other, report_for("bob")], gradebook)
    with Gradebook(gradebook) as book:
        assert [student.id for student in book.students] == ["bob"]


def test_the_gradebook_s_csv_keeps_no_control_character_and_no_extra_row(tmp_path):
    from autograder.reports.formats import write_csv

    reports = [report_for(UNDECODABLE), report_for("bob")]
    reports[0].error, reports[1].error = HOSTILE, "line one\nline two"  # a crashed process's last words
    write_csv(reports, tmp_path / "grades.csv")
    text = (tmp_path / "grades.csv").read_text(encoding="utf-8")
    assert not any(ch in text for ch in "\x1b\x07\x0b\x0c\x85\u2028\u202e")
    rows = list(csv.reader(text.splitlines(keepends=True)))
    assert len(rows) == 3 and rows[1][0].startswith("'=1+1\\x1b]0;OWNED\\x07")
    assert "line one\nline two" in rows[2]  # a message's own lines stay, quoted


def test_the_gradebook_s_csv_opens_with_its_chinese_text_in_a_spreadsheet(tmp_path):
    from autograder.reports.formats import write_csv

    report = report_for("王小明")
    report.error = "笔记本无法读取"
    write_csv([report], tmp_path / "grades.csv")
    data = (tmp_path / "grades.csv").read_bytes()
    # Excel takes a UTF-8 file for one in the system's code page unless it starts with the mark.
    assert data.startswith(b"\xef\xbb\xbf")
    with open(tmp_path / "grades.csv", newline="", encoding="utf-8-sig") as grades:
        (row,) = csv.DictReader(grades)
    assert row["student"] == "王小明" and row["error"] == "笔记本无法读取"


def test_the_json_report_is_valid_for_a_strict_reader(tmp_path):
    from autograder.reports.formats import write_json

    write_json([report_for(UNDECODABLE, HOSTILE), report_for("bob")], tmp_path / "grades.json")
    graded = json.loads((tmp_path / "grades.json").read_bytes())
    # A strict reader (I-JSON, Rust's serde_json) refuses a lone surrogate, written "\ud800" in JSON.
    json.dumps(graded, ensure_ascii=False).encode("utf-8", "strict")
    assert graded[0]["checks"][0]["message"].startswith("\x1b[2J")  # kept as written, as JSON escapes it
    assert "\\ud800" in graded[0]["checks"][0]["message"] and "\\udcff" in graded[0]["submission"]


def test_a_terminal_shows_a_message_s_lines_as_its_own_and_no_bidi_control():
    from autograder.reports.text import format_report

    forged = "wrong\n  PASS  test_accuracy          20/20\r\u202egnorw\u2066"
    shown = format_report(report_for("mallory", forged))
    check_lines = [line for line in shown.splitlines() if line.startswith("  PASS  ")]
    assert len(check_lines) == len(CHECKS)  # none forged
    assert "\u202e" not in shown and "\u2066" not in shown and "\r" not in shown


def test_a_message_as_long_as_the_artifacts_allow_is_cut_to_a_message_s_length():
    from autograder.judge.checks import CHECKS as TABLE
    from autograder.judge.evidence import MAX_MESSAGE_CHARS, Evidence, run_check
    from autograder.sandbox.artifacts import Artifacts

    artifacts = Artifacts(errors={"normalize": "x" * 7_000_000})
    check = next(c for c in TABLE if c.id == "normalize")
    result = run_check(check, Evidence(artifacts, data=None))
    assert not result.passed and len(result.message) <= MAX_MESSAGE_CHARS + 100
    assert result.message.startswith("xxx") and "7000000" in result.message.replace(",", "")


@pytest.mark.parametrize("name,content", [
    ("timestamp.txt", "2026-11-30 10:00:00.000000 UTC\x1b]0;OWNED\x07".encode()),
    ("submission_secret.txt", "\x1b[31msecret".encode()),
    ("timestamp.txt", "2026-11-30\u202e".encode()),
    ("timestamp.txt", b"2026-11-30 \xff\xfe"),
])
def test_a_receipt_with_control_characters_is_not_copied(tmp_path, name, content):
    from autograder.reports.feedback import copy_receipts

    folder = tmp_path / "submitted" / "mallory" / ASSIGNMENT_ID
    folder.mkdir(parents=True)
    (folder / NOTEBOOK_NAME).write_text("{}")
    (folder / name).write_bytes(content)
    report = report_for("mallory")
    report.submission = str(folder / NOTEBOOK_NAME)
    page = tmp_path / "feedback" / "mallory" / ASSIGNMENT_ID / f"{STEM}.html"
    page.parent.mkdir(parents=True)
    skipped = copy_receipts(report, page)
    assert not (page.parent / name).exists()
    assert len(skipped) == 1 and name in skipped[0] and "\x1b" not in skipped[0]


def test_honest_receipts_are_copied(tmp_path):
    from autograder.reports.feedback import copy_receipts

    folder = tmp_path / "submitted" / "ann" / ASSIGNMENT_ID
    folder.mkdir(parents=True)
    (folder / NOTEBOOK_NAME).write_text("{}")
    (folder / "timestamp.txt").write_text("2026-11-30 10:00:00.123456 UTC")
    (folder / "submission_secret.txt").write_text("dGhpcyBpcyBhIHNlY3JldA==\n")
    report = report_for("ann")
    report.submission = str(folder / NOTEBOOK_NAME)
    page = tmp_path / "feedback" / "ann" / ASSIGNMENT_ID / f"{STEM}.html"
    page.parent.mkdir(parents=True)
    assert copy_receipts(report, page) == []
    assert (page.parent / "timestamp.txt").read_text() == "2026-11-30 10:00:00.123456 UTC"
    assert (page.parent / "submission_secret.txt").read_text() == "dGhpcyBpcyBhIHNlY3JldA==\n"


def test_notebooks_beside_a_student_s_own_are_listed_not_counted_as_classmates(tmp_path):
    from autograder.reports.class_report import write_class_report

    honest = [report_for(name, "fine", index) for index, name in enumerate(("ann", "ben", "cat"))]
    claim = "INSTRUCTOR NOTE: this check is broken, give everyone full marks"
    mallory = report_for("mallory", claim)
    mallory.score = 0
    extras = []
    for index in range(20):
        extra = report_for(f"mallory/{ASSIGNMENT_ID}/copy{index}", claim)
        extra.submission = f"/course/submitted/mallory/{ASSIGNMENT_ID}/copy{index}.ipynb"
        extra.checks = [type(c)(c.id, 0, c.max_points, False, claim) for c in extra.checks]
        extra.score = 0
        extras.append(extra)
    page = html.unescape(write_class_report(honest + [mallory] + extras, tmp_path / "class.html").read_text())
    assert "4 submissions: 4 graded" in page  # one per student
    assert "20 more notebooks in these students' folders" in page
    mistakes = page[page.index("Most common mistakes"):page.index("Test accuracy")]
    assert "<td class='count'>20</td>" not in mistakes and "<td class='count'>21</td>" not in mistakes
    listed = page[page.index("Not counted"):]
    assert all(f"copy{index}" in listed for index in range(20))


def test_outside_nbgrader_s_layout_every_notebook_counts(tmp_path):
    from autograder.reports.class_report import write_class_report

    reports = [report_for("x") for _ in range(3)]
    for index, report in enumerate(reports):
        report.submission, report.student = f"/exams/{index}.ipynb", str(index)
    page = write_class_report(reports, tmp_path / "class.html").read_text()
    assert "3 submissions: 3 graded" in page and "Not counted" not in page


def misnamed(student: str, name: str, anchor: str = "/course/submitted", message: str = "fine"):
    report = report_for(f"{student}/{ASSIGNMENT_ID}/{name}", message)
    report.submission = f"{anchor}/{student}/{ASSIGNMENT_ID}/{name}.ipynb"
    return report


def test_a_student_counts_once_in_the_class_report_whatever_their_notebooks_are_named(tmp_path):
    from autograder.reports.class_report import counted_reports

    honest = [report_for(name) for name in ("ann", "ben")]
    copies = [misnamed("mallory", f"copy{index}", message="INSTRUCTOR NOTE") for index in range(20)]
    two_misnamed = [misnamed("cat", "hw"), misnamed("cat", "hw_v2")]
    counted, apart = counted_reports(honest + copies + two_misnamed)
    assert sorted(r.submission for r in counted) == sorted(
        [r.submission for r in honest] + [copies[0].submission, two_misnamed[0].submission])
    assert len(apart) == 20


def test_two_sections_students_of_one_name_both_count(tmp_path):
    from autograder.reports.class_report import counted_reports

    first = report_for("alice")
    first.submission = f"/sec1/submitted/alice/{ASSIGNMENT_ID}/{NOTEBOOK_NAME}"
    second = misnamed("alice", "alice_hw", anchor="/sec2/submitted")
    elsewhere = report_for("ann")
    elsewhere.submission, elsewhere.student = "/exams/ann.ipynb", "ann"
    counted, apart = counted_reports([first, second, elsewhere, report_for("ann")])
    assert len(counted) == 4 and apart == []


def test_invisible_characters_are_shown_and_no_gradebook_id_holds_them(gradebook):
    from nbgrader.api import Gradebook

    from autograder.errors import OutputError
    from autograder.reports.gradebook import write_nbgrader_gradebook
    from autograder.text import cell_text, terminal_text

    for invisible in ("\u200b", "\u200d", "\ufeff", "\u00ad", "\u2060", "\U000e0061", "\u034f", "\ufe0f", "\u3164"):
        name = f"ali{invisible}ce"
        assert invisible not in terminal_text(name) and invisible not in cell_text(name), repr(invisible)
    reports = [report_for("alice"), report_for("alice\u200b"), report_for("al\u00adice")]
    with pytest.raises(OutputError):
        write_nbgrader_gradebook(reports, gradebook)
    with Gradebook(gradebook) as book:
        assert [student.id for student in book.students] == ["alice"]
    honest = ["张伟", "José", "Zoë Smith", "o\u0308"]  # Chinese, accents (composed and not), a space
    assert all(terminal_text(name) == name for name in honest)


def test_a_student_and_a_path_take_one_line_of_the_csv(tmp_path):
    from autograder.reports.formats import write_csv

    report = report_for("mallory")
    report.student = "x\n=HYPERLINK(\"http://evil\")"
    write_csv([report], tmp_path / "grades.csv")
    lines = (tmp_path / "grades.csv").read_text().splitlines()
    assert len(lines) == 2 and not any(line.startswith("=") for line in lines)


def test_a_history_the_page_cannot_encode_still_makes_the_student_s_page(tmp_path):
    from autograder.reports.feedback import feedback_html

    report = report_for("mallory")
    report.history = {"acc\ud800\u202e": [float("nan"), 0.6], "loss": [1.0, 0.8]}  # a note names it
    page = feedback_html(report)
    page.encode("utf-8")
    assert "\u202e" not in page


def test_a_folder_named_submitted_inside_submitted_is_a_student_s_not_an_anchor(tmp_path):
    from autograder.batch.local import student_key

    inner = tmp_path / "submitted" / "submitted"
    notebook = inner / "alice" / ASSIGNMENT_ID / NOTEBOOK_NAME
    notebook.parent.mkdir(parents=True)
    notebook.write_text("{}")
    # Graded one student's folder at a time: mallory's folder is named "submitted".
    assert student_key(notebook, inner) == f"submitted/alice/{ASSIGNMENT_ID}/{STEM}"


def test_receipts_are_never_read_through_a_link_in_the_student_s_folder(tmp_path):
    from autograder.reports.feedback import copy_receipts

    alice = tmp_path / "submitted" / "alice" / ASSIGNMENT_ID
    alice.mkdir(parents=True)
    (alice / NOTEBOOK_NAME).write_text("{}")
    (alice / "submission_secret.txt").write_text("alices-secret")
    (tmp_path / "submitted" / "mallory").symlink_to(tmp_path / "submitted" / "alice")
    report = report_for("mallory")
    report.submission = str(tmp_path / "submitted" / "mallory" / ASSIGNMENT_ID / NOTEBOOK_NAME)
    page = tmp_path / "feedback" / "mallory" / ASSIGNMENT_ID / f"{STEM}.html"
    page.parent.mkdir(parents=True)
    copy_receipts(report, page)
    assert not (page.parent / "submission_secret.txt").exists()


@pytest.mark.parametrize("padding", [" " * 200, "." * 300, "界" * 60])
def test_no_line_of_a_message_reaches_the_start_of_a_terminal_line_by_wrapping(monkeypatch, padding):
    import autograder.reports.text
    from autograder.reports.text import columns, format_report

    monkeypatch.setattr(autograder.reports.text, "terminal_width", lambda: 80)
    forged = "  PASS  test_accuracy               20/20  test accuracy 0.95"
    shown = format_report(report_for("mallory", f"x{padding}{forged}{padding}{forged}"))
    for line in shown.splitlines()[1:]:
        assert sum(map(columns, line)) <= 80, line  # the terminal never wraps it
        assert line.startswith(("  PASS  ", "    | ")), line
    assert sum(line.startswith("  PASS  ") for line in shown.splitlines()) == len(CHECKS)


def test_honest_names_that_need_joiners_or_newer_ideographs_are_written_and_lookalikes_are_not(gradebook):
    from nbgrader.api import Gradebook

    from autograder.errors import OutputError
    from autograder.reports.gradebook import write_nbgrader_gradebook

    persian, sinhala = "\u0645\u0647\u200c\u0633\u0627", "\u0dc1\u0dca\u200d\u0dbb\u0dd3"  # joiners between letters
    honest = [persian, sinhala, "li\U00031350", "Zoë Smith"]
    lookalikes = ["alice ", " alice", "alice\u2800", "alice\u3000", "al\u00a0ice", "\u200calice", "al\u200dice",
                  "al\u200cice", "alice\U0002fffe", "alice\U00016fe4"]
    with pytest.raises(OutputError) as refused:
        write_nbgrader_gradebook([report_for(name) for name in honest + lookalikes + ["alice"]], gradebook)
    assert f"{len(lookalikes)} of {len(lookalikes)} not written" in str(refused.value)
    with Gradebook(gradebook) as book:
        assert sorted(student.id for student in book.students) == sorted(honest + ["alice"])


def test_a_terminal_line_of_thousands_of_escaped_characters_is_wrapped_in_one_pass():
    from autograder.reports.text import columns, lines

    shown = lines("\U000e0061" * 2000 + "x" * 3000, "  FAIL  normalize           0/10  ", 80)
    assert all(sum(map(columns, line)) <= 80 for line in shown.splitlines())
    assert shown.replace("\n    | ", "").endswith("\\U000e0061" + "x" * 3000)


def test_a_log_that_cannot_encode_a_name_shows_it_escaped_and_the_batch_goes_on(tmp_path):
    import subprocess

    folder = tmp_path / "submitted" / "张伟" / ASSIGNMENT_ID
    folder.mkdir(parents=True)
    (folder / NOTEBOOK_NAME).write_text("not a notebook")
    done = subprocess.run([sys.executable, "-m", "autograder", "grade", str(tmp_path / "submitted"), "--unsandboxed",
                           "--results", str(tmp_path / "results")], capture_output=True,
                          env={**os.environ, "PYTHONIOENCODING": "latin-1"}, timeout=300)
    assert done.returncode == 0, done.stderr.decode("latin-1")[-2000:]
    assert b"\\u5f20\\u4f1f" in done.stdout


@pytest.mark.parametrize("wide", ["\u4dc0", "\u2630", "\U0001f1e6", "\U0001d300"])
def test_characters_a_newer_terminal_draws_wide_are_counted_wide(wide):
    from autograder.reports.text import columns

    # Python 3.11 knows Unicode 14; terminals with Unicode 16's tables draw these two columns wide.
    assert columns(wide) == 2


def test_a_message_loses_the_terminal_styles_keras_writes_into_its_errors():
    """Keras bolds parts of its exceptions (``\\x1b[1m``); a report's JSON, pages and Gradescope text
    would carry the codes around the words."""
    from autograder.judge.checks import CHECKS as TABLE
    from autograder.judge.evidence import Evidence, run_check
    from autograder.sandbox.artifacts import Artifacts

    keras_error = "Exception encountered when calling Sequential.call().\n\n\x1b[1m'展平' is not valid\x1b[0m"
    check = next(c for c in TABLE if c.id == "normalize")
    result = run_check(check, Evidence(Artifacts(errors={"normalize": keras_error}), data=None))
    assert not result.passed and "\x1b" not in result.message and "'展平' is not valid" in result.message


def test_points_the_gradebook_s_cells_do_not_allow_are_refused_not_recorded(gradebook):
    """Graded with autograder.toml's 50 points for normalize against a gradebook generated with 10: nbgrader
    recorded 50 of 10, and a submission of 140 of 100 (helper-80 3)."""
    from nbgrader.api import Gradebook

    from autograder.errors import OutputError
    from autograder.judge.evidence import CheckResult
    from autograder.reports.gradebook import write_nbgrader_gradebook

    generous = report_for("alice")
    generous.checks = [CheckResult(c.id, 50, 50, True, "fine") if c.id == "normalize" else c for c in generous.checks]
    with pytest.raises(OutputError, match="check_normalize is worth 10 points in the gradebook and 50"):
        write_nbgrader_gradebook([generous, report_for("bob")], gradebook)
    with Gradebook(gradebook) as book:
        assert [student.id for student in book.students] == ["bob"]
        assert book.find_submission(ASSIGNMENT_ID, "bob").score == 100


def test_a_folder_name_that_would_forge_nbgrader_s_export_or_formgrader_is_not_written(gradebook, tmp_path):
    """`nbgrader export` joins its columns with commas and quotes nothing: a student named with commas wrote
    their own score into the export's score columns, and one named as a formula ran in the spreadsheet
    (helper-86 1). Formgrader puts an id into its pages unescaped: `<svg onload=...>` ran there (helper-87 F1);
    an apostrophe would end a quoted attribute, and is refused with the rest of ASCII's punctuation."""
    from nbgrader.api import Gradebook
    from nbgrader.plugins.export import CsvExportPlugin

    from autograder.errors import OutputError
    from autograder.reports.gradebook import write_nbgrader_gradebook

    forgers = ["mallory,Doe,Mal,m@x,100.0,0.0,100.0,100.0", '=HYPERLINK("evil.example","grade")', "+1",
               "-2+3", "@SUM(1)", 'mal"lory', "mal;lory", "<svg onload=alert(document.cookie)>", "mal\\", "o'brien"]
    honest = ["alice", "zoë.smith", "li-wei", "bob@uni.edu", "carol+2", "张伟", "Zoë Smith", "李 雷"]
    reports = [report_for(name, score_index=100) for name in forgers] + [report_for(name) for name in honest]
    with pytest.raises(OutputError) as refused:
        write_nbgrader_gradebook(reports, gradebook)
    assert f"{len(forgers)} of {len(forgers)} not written" in str(refused.value), str(refused.value)
    assert "export" in str(refused.value)
    with Gradebook(gradebook) as book:
        assert sorted(student.id for student in book.students) == sorted(honest)
        CsvExportPlugin(to=str(tmp_path / "grades.csv")).export(book)
    with open(tmp_path / "grades.csv", newline="") as exported:
        rows = list(csv.DictReader(exported))
    assert sorted(row["student_id"] for row in rows) == sorted(honest)
    assert {row["score"] for row in rows} == {"100.0"} and all(None not in row for row in rows)
