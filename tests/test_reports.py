"""`autograder grade`'s reports: the contract's JSON, the CSV gradebook and Gradescope's results.json agree."""

from __future__ import annotations

import base64
import csv
import dataclasses
import json
import os
from html.parser import HTMLParser
from pathlib import Path

import pytest

from autograder.assignment import ASSIGNMENT_ID, NOTEBOOK_NAME
from autograder.cli import main
from autograder.judge.checks import CHECKS

SUBMISSIONS = Path(__file__).parent / "submissions"
ATTACKS = Path(__file__).parent / "attacks"
CONTRACT_FIELDS = {"submission", "student", "score", "max_score", "error", "checks"}
CHECK_FIELDS = {"id", "points", "max_points", "passed", "message"}


def test_json_csv_and_gradescope_agree(tmp_path, real_data_dir, capsys):
    import shutil

    # Two students in nbgrader's layout, their notebooks named alike: every output is per student.
    for student, notebook in (("ann", "unfilled_stubs.ipynb"), ("ben", "not_json.ipynb")):
        (tmp_path / "submitted" / student / ASSIGNMENT_ID).mkdir(parents=True)
        shutil.copy(SUBMISSIONS / notebook, tmp_path / "submitted" / student / ASSIGNMENT_ID / NOTEBOOK_NAME)
    status = main([
        "grade", str(tmp_path / "submitted"), "--unsandboxed", "--data-dir", str(real_data_dir),
        "--results", str(tmp_path / "results"), "--json", str(tmp_path / "grades.json"),
        "--csv", str(tmp_path / "grades.csv"), "--gradescope", str(tmp_path / "gradescope"),
        "--feedback", str(tmp_path / "feedback"), "--class-report", str(tmp_path / "class.html"),
    ])
    assert status == 0
    out = capsys.readouterr().out
    assert "2 submissions: 1 graded, 1 could not be graded" in out
    assert out.count("  took ") == 2  # each submission's time in the log

    graded = json.loads((tmp_path / "grades.json").read_text())
    assert [set(entry) for entry in graded] == [CONTRACT_FIELDS] * 2
    for entry in graded:
        assert [c["id"] for c in entry["checks"]] == [check.id for check in CHECKS]
        assert all(set(c) == CHECK_FIELDS for c in entry["checks"])
        assert entry["score"] == sum(c["points"] for c in entry["checks"]) and entry["max_score"] == 100
    assert graded[0]["error"] is None and "not valid JSON" in graded[1]["error"]
    assert [entry["student"] for entry in graded] == ["ann", "ben"]

    with open(tmp_path / "grades.csv", newline="", encoding="utf-8-sig") as handle:
        rows = list(csv.DictReader(handle))
    for row, entry in zip(rows, graded):
        assert row["submission"] == entry["submission"] and int(row["score"]) == entry["score"]
        assert row["student"] == entry["student"]
        assert all(int(row[c["id"]]) == c["points"] for c in entry["checks"])

    for entry in graded:
        place = Path(entry["student"], ASSIGNMENT_ID, Path(NOTEBOOK_NAME).stem)
        results = json.loads((tmp_path / "gradescope" / place / "results.json").read_text())
        assert results["score"] == entry["score"] and results["max_score"] == entry["max_score"]
        assert isinstance(results["execution_time"], int) and results["execution_time"] >= 0
        assert [(t["name"], t["score"], t["output"]) for t in results["tests"]] == [
            (c["id"], c["points"], c["message"]) for c in entry["checks"]
        ]
        hidden = {t["name"] for t in results["tests"] if t["visibility"] != "visible"}
        assert hidden == {check.id for check in CHECKS if check.hidden}

    for entry in graded:
        place = Path(entry["student"], ASSIGNMENT_ID, Path(NOTEBOOK_NAME).stem)
        page = FeedbackPage.read((tmp_path / "feedback" / place).with_suffix(".html"))
        assert page.score == str(entry["score"]) and page.student == entry["student"]
        assert [row[1:] for row in page.rows] == [
            [c["id"], f"{c['points']}/{c['max_points']}", c["message"]] for c in entry["checks"]
        ]
        assert page.images == []  # nothing trained, nothing to draw
    overview = (tmp_path / "class.html").read_text()
    assert "2 submissions: 1 graded, 1 could not be graded." in overview and "<td>ann</td>" in overview


class FeedbackPage(HTMLParser):
    """What a reader sees on a feedback page: the score, the table's rows, the images."""

    def __init__(self):
        super().__init__()
        self.score, self.student, self.rows, self.images, self._cell, self._in = None, None, [], [], None, None

    @classmethod
    def read(cls, path: Path) -> "FeedbackPage":
        page = cls()
        page.feed(path.read_text())
        return page

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "span" and attrs.get("class") in ("score", "student"):
            self._in = attrs["class"]
        elif tag == "tr" and "class" in attrs:
            self.rows.append([])
        elif tag == "td" and self.rows:
            self._cell = ""
        elif tag == "img":
            self.images.append((attrs["alt"], attrs["src"]))

    def handle_endtag(self, tag):
        if tag == "td" and self._cell is not None:
            self.rows[-1].append(self._cell)
            self._cell = None
        self._in = None if tag == "span" else self._in

    def handle_data(self, data):
        if self._in:
            setattr(self, self._in, data)
        if self._cell is not None:
            self._cell += data


@pytest.mark.slow
def test_the_feedback_page_of_a_trained_model_shows_its_curves_and_confusion_matrix(tmp_path, real_data_dir,
                                                                                     kept_trainings):
    notebook = SUBMISSIONS / "passes_all.ipynb"
    assert main(["grade", str(notebook), "--unsandboxed", "--data-dir", str(real_data_dir),
                 "--trainings", str(kept_trainings),
                 "--results", str(tmp_path / "results"), "--feedback", str(tmp_path / "feedback")]) == 0
    page = FeedbackPage.read(tmp_path / "feedback" / "passes_all" / ASSIGNMENT_ID / "passes_all.html")
    assert page.score == "100"
    assert [alt for alt, _ in page.images] == ["Learning curves", "Confusion matrix"]
    for _, src in page.images:
        assert src.startswith("data:image/png;base64,")
        assert base64.b64decode(src.split(",", 1)[1]).startswith(b"\x89PNG")


# --- Non-finite numbers: a student's NaN or inf never stops the class's outputs -----------------------------

INF, NAN = float("inf"), float("nan")
NON_FINITE_HISTORY = {"loss": [0.5, INF, NAN], "val_accuracy": [NAN] * 3, "accuracy": [-INF, 1e308, 0.2]}
GOOD_CONFUSION = [[90 if i == j else 1 for j in range(10)] for i in range(10)]


def refuse_constant(name):
    raise ValueError(f"not strict JSON: {name}")


def strict_json(text: str):
    """Parse as a strict parser does (JavaScript's, Go's, Gradescope's): NaN and Infinity are not JSON."""
    return json.loads(text, parse_constant=refuse_constant)


def class_report(student: str, *, history=None, confusion=None, usage=None, error=None):
    from autograder.judge.evidence import CheckResult
    from autograder.judge.report import GradeReport

    checks = [CheckResult(c.id, c.points if error is None else 0, c.points, error is None, f"{c.id}: fine")
              for c in CHECKS]
    # Every notebook has the same name, as in nbgrader's layout: each output is the student's.
    submission = f"submitted/{student}/fashion_mnist/fashion_mnist_classifier.ipynb"
    return GradeReport(submission, sum(c.points for c in checks), 100, error, checks, [f"a note for {student}"],
                       history=dict(history or {}), confusion=confusion, usage=dict(usage or {}))


def a_class() -> list:
    return [
        class_report("ann", history={"loss": [0.6, 0.4], "accuracy": [0.8, 0.9]}, confusion=GOOD_CONFUSION,
                     usage={"seconds": 12.3, "sandbox_peak_memory_mib": 900}),
        class_report("ben", history=NON_FINITE_HISTORY, confusion=GOOD_CONFUSION,
                     usage={"seconds": INF, "sandbox_peak_memory_mib": NAN}),
        class_report("cat", history={"loss": [0.7]}, confusion=[[1, 2, 3], [4, 5], [-6, 10**400, NAN]]),
        class_report("dan", error="the notebook is not valid JSON"),
    ]


def place(report) -> Path:
    return Path(report.submission).parent.parent.name / Path(ASSIGNMENT_ID, Path(NOTEBOOK_NAME).stem)


def page_of(folder: Path, report) -> Path:
    return (folder / place(report)).with_suffix(".html")


@pytest.fixture(scope="module")
def empty_gradebook(tmp_path_factory) -> Path:
    """The gradebook `nbgrader generate_assignment` makes for this assignment, made once without running nbgrader."""
    import os
    import sys

    from nbgrader.api import Gradebook

    from autograder.assignment import ASSIGNMENT_ID, NOTEBOOK_NAME

    path = tmp_path_factory.mktemp("gradebook") / "gradebook.db"
    with pytest.MonkeyPatch.context() as patch:
        # nbgrader runs alembic from PATH to create its gradebook, so the virtualenv's bin goes first.
        patch.setenv("PATH", f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")
        with Gradebook(f"sqlite:///{path}") as gradebook:
            gradebook.add_assignment(ASSIGNMENT_ID)
            gradebook.add_notebook(Path(NOTEBOOK_NAME).stem, ASSIGNMENT_ID)
            for check in CHECKS:
                gradebook.add_grade_cell(f"check_{check.id}", Path(NOTEBOOK_NAME).stem, ASSIGNMENT_ID,
                                         max_score=check.points, cell_type="code")
    return path


def gradebook_scores(url: str) -> dict[str, list]:
    from nbgrader.api import Gradebook

    from autograder.assignment import ASSIGNMENT_ID, NOTEBOOK_NAME

    with Gradebook(url) as gradebook:
        return {
            student: [gradebook.find_grade(f"check_{c.id}", Path(NOTEBOOK_NAME).stem, ASSIGNMENT_ID, student).auto_score
                      for c in CHECKS]
            for student in ("ann", "ben", "cat", "dan")
        }


def grade_class(tmp_path, monkeypatch, reports, empty_gradebook) -> tuple[list[str], dict[str, Path]]:
    import shutil

    import autograder.batch.local

    monkeypatch.setattr(autograder.batch.local, "grade_notebooks", lambda *args, **kwargs: reports)
    outputs = {"json": tmp_path / "grades.json", "csv": tmp_path / "grades.csv",
               "gradescope": tmp_path / "gradescope", "feedback": tmp_path / "feedback"}
    url = f"sqlite:///{shutil.copy(empty_gradebook, tmp_path / 'gradebook.db')}"
    argv = ["grade", str(tmp_path / "submitted"), "--results", str(tmp_path / "results"),
            *(arg for name, path in outputs.items() for arg in (f"--{name}", str(path))), "--nbgrader-db", url]
    return argv, {**outputs, "url": url}


def test_a_class_with_nan_and_inf_gets_every_output_for_every_student(tmp_path, monkeypatch, capsys, empty_gradebook):
    reports = a_class()
    argv, outputs = grade_class(tmp_path, monkeypatch, reports, empty_gradebook)
    assert main(argv) == 0, capsys.readouterr().err
    assert capsys.readouterr().err == ""

    graded = strict_json(outputs["json"].read_text())
    assert [entry["submission"] for entry in graded] == [r.submission for r in reports]
    with open(outputs["csv"], newline="", encoding="utf-8-sig") as handle:
        assert [row["submission"] for row in csv.DictReader(handle)] == [r.submission for r in reports]
    for report in reports:
        results = strict_json((outputs["gradescope"] / place(report) / "results.json").read_text())
        assert results["score"] == report.score
        assert "execution_time" not in results or isinstance(results["execution_time"], (int, str))
        assert page_of(outputs["feedback"], report).is_file()

    ann, ben, cat, dan = (FeedbackPage.read(page_of(outputs["feedback"], r)) for r in reports)
    assert [alt for alt, _ in ann.images] == ["Learning curves", "Confusion matrix"]
    # What is finite is drawn; what is not is said, in words a reader can find on the page.
    assert [alt for alt, _ in ben.images] == ["Learning curves", "Confusion matrix"]
    ben_text = page_of(outputs["feedback"], reports[1]).read_text()
    assert "loss: inf at epoch 2, NaN at epoch 3 (not drawn)" in ben_text
    assert "val_accuracy: NaN at epochs 1–3 (not drawn)" in ben_text
    assert "accuracy: -inf at epoch 1" in ben_text
    for page, report in zip((ann, ben, cat, dan), reports):  # every check's message, whatever the numbers
        assert [row[1:] for row in page.rows] == [
            [c.id, f"{c.points}/{c.max_points}", c.message] for c in report.checks
        ]
    # A confusion matrix of the wrong shape: the page without it, and why.
    assert [alt for alt, _ in cat.images] == ["Learning curves"]
    cat_text = page_of(outputs["feedback"], reports[2]).read_text()
    assert "The confusion matrix could not be drawn" in cat_text
    assert dan.images == []

    scores = gradebook_scores(outputs["url"])
    assert scores["ben"] == [c.points for c in CHECKS] and scores["dan"] == [0] * len(CHECKS)
    assert all(isinstance(points, (int, float)) and points == int(points) for row in scores.values() for points in row)


def test_an_output_that_fails_is_named_and_the_others_are_still_written(tmp_path, monkeypatch, capsys, empty_gradebook):
    import autograder.reports.feedback
    import autograder.reports.formats

    def disk_full(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(autograder.reports.formats, "write_json", disk_full)
    monkeypatch.setattr(autograder.reports.feedback, "write_feedback", disk_full)
    argv, outputs = grade_class(tmp_path, monkeypatch, a_class(), empty_gradebook)
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert f"--json {outputs['json']}" in err and f"--feedback {outputs['feedback']}" in err
    assert err.count("No space left on device") == 2
    assert "--csv" not in err and "--gradescope" not in err and "--nbgrader-db" not in err
    assert outputs["csv"].is_file() and len(list(outputs["gradescope"].rglob("results.json"))) == 4
    # The gradebook, written after the failed feedback, has everybody's points.
    assert gradebook_scores(outputs["url"])["ann"] == [c.points for c in CHECKS]


def test_one_page_that_cannot_be_written_leaves_the_others_written(tmp_path, monkeypatch):
    import autograder.reports.feedback
    from autograder.reports.feedback import write_feedback

    page = autograder.reports.feedback.feedback_html

    def broken_for_ben(report):
        if "ben" in report.submission:
            raise RuntimeError("a bug in the page")
        return page(report)

    monkeypatch.setattr(autograder.reports.feedback, "feedback_html", broken_for_ben)
    with pytest.raises(Exception, match="ben/fashion_mnist.*a bug in the page"):
        write_feedback(a_class(), tmp_path)
    assert sorted(p.parent.parent.name for p in tmp_path.glob("*/fashion_mnist/*.html")) == ["ann", "cat", "dan"]


@pytest.mark.parametrize("history", [
    NON_FINITE_HISTORY,
    {},
    {"loss": []},
    {"loss": [NAN] * 5},
    {"loss": [INF] * 30},
    {"loss": [10**308] * 3},
    {"loss": [10**400, -10**400]},
    {"loss": [1e308, -1e308, 0.5]},
    {"loss": ["Infinity", "NaN", "-Infinity", 0.5]},  # as read back from strict JSON
    {"loss": [None, "x", [1]], "accuracy": 0.5, "$\\frac{": [0.1, 0.2]},
], ids=lambda history: repr(history)[:40])
def test_learning_curves_draw_what_is_finite_and_never_raise(history):
    import io

    from autograder.reports.plots import curve_notes, learning_curves

    fig = learning_curves(history)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    assert buffer.getvalue().startswith(b"\x89PNG")
    notes = curve_notes(history)
    assert isinstance(notes, list) and all(isinstance(note, str) for note in notes)


def test_curve_notes_say_which_values_are_not_drawn():
    from autograder.reports.plots import curve_notes

    assert curve_notes({"loss": [0.5, 0.4]}) == []
    assert curve_notes(NON_FINITE_HISTORY) == [
        "loss: inf at epoch 2, NaN at epoch 3 (not drawn)",
        "val_accuracy: NaN at epochs 1–3 (not drawn)",
        "accuracy: -inf at epoch 1, 1e+308 (too large to draw) at epoch 2 (not drawn)",
    ]
    assert curve_notes({"val_loss": [0.3, 0.2] + [INF] * 28}) == ["val_loss: inf at epochs 3–30 (not drawn)"]
    assert curve_notes({"loss": ["Infinity", "NaN"]}) == ["loss: inf at epoch 1, NaN at epoch 2 (not drawn)"]
    assert curve_notes({"loss": []}) == ["loss: no values"]


def test_curve_notes_speak_the_feedback_page_s_language():
    from autograder.i18n import speaking
    from autograder.reports.plots import curve_notes

    history = {"val_loss": [0.3, 0.2] + [INF] * 28, "loss": [1e308, 0.5]}
    with speaking("zh_CN"):
        assert curve_notes(history) == ["val_loss: 第 3–30 个轮次为 inf（未绘制）",
                                        "loss: 第 1 个轮次为 1e+308（太大，无法绘制）（未绘制）"]
        assert curve_notes({"loss": list(range(0, 40, 2)) + [NAN, 0.1] * 10}) == [
            "loss: 第 21, 23, 25, 27, 29, 31 个轮次等（另有 4 段）为 NaN（未绘制）"]


def figure_texts(fig) -> list[str]:
    ax = fig.axes[0]
    return [ax.get_title(), ax.get_xlabel(), ax.get_ylabel(),
            *(text.get_text() for text in (ax.get_legend().get_texts() if ax.get_legend() else []))]


def drawn_with_warnings(draw) -> tuple[object, list[str]]:
    import io
    import warnings

    from autograder.reports.plots import figure_language

    with warnings.catch_warnings(record=True) as caught, figure_language():
        warnings.simplefilter("always")
        fig = draw()
        fig.savefig(io.BytesIO(), format="png")
    return fig, [str(warning.message) for warning in caught]


def test_a_chinese_page_s_figures_speak_chinese_where_a_font_draws_it():
    from autograder.i18n import speaking
    from autograder.reports import plots
    from autograder.reports.feedback import confusion_figure

    if plots.cjk_font() is None:
        pytest.skip("no font with Chinese characters here: `make` installs Debian's fonts-wqy-microhei as root")
    history = {"loss": [0.5, INF], "val_loss": [0.6, 0.5]}
    with speaking("zh_CN"):
        curves, warned = drawn_with_warnings(lambda: plots.learning_curves(history))
        confusion, warned_too = drawn_with_warnings(lambda: confusion_figure([[1] * 10] * 10))
    assert figure_texts(curves) == ["学习曲线", "轮次", "", "loss: 第 2 个轮次为 inf（未绘制）", "val_loss"]
    assert figure_texts(confusion)[:3] == ["在 10,000 幅测试图像上的混淆矩阵", "预测类别", "真实类别"]
    assert not [w for w in warned + warned_too if "missing from" in w], "every character has its glyph"


def test_without_such_a_font_a_chinese_page_s_figures_speak_english_not_boxes(monkeypatch, tmp_path):
    from autograder.i18n import speaking
    from autograder.reports import plots

    (tmp_path / "damaged.ttc").write_bytes(b"not a font")
    assert plots.cjk_font(("/nonexistent/font.ttc", "/dev/null", str(tmp_path / "damaged.ttc"))) is None
    monkeypatch.setattr(plots, "cjk_font", lambda: None)
    with speaking("zh_CN"):
        curves, warned = drawn_with_warnings(lambda: plots.learning_curves({"loss": [0.5, INF]}))
    assert figure_texts(curves) == ["Learning curves", "epoch", "", "loss: inf at epoch 2 (not drawn)"]
    assert not [w for w in warned if "missing from" in w]


@pytest.mark.parametrize("confusion, drawn", [
    ([[1, 2], [3, 4]], False),
    ([[1, 2, 3], [4, 5]], False),
    ([[1] * 10] * 9 + [[1] * 9], False),
    ("not a matrix", False),
    (7, False),
    ([[-5] * 10] * 10, True),
    ([[10**400] * 10] * 10, True),
    ([[1e308 if i == j else -1e308 for j in range(10)] for i in range(10)], True),
    ([[NAN, INF, -INF, "Infinity", None, 1, 2, 3, 4, 5]] * 10, True),
], ids=lambda value: repr(value)[:40])
def test_a_malformed_confusion_matrix_never_stops_the_page(confusion, drawn):
    from autograder.reports.feedback import feedback_html

    page = feedback_html(class_report("eve", history={"loss": [0.5]}, confusion=confusion))
    assert "alt='Learning curves'" in page
    assert ("alt='Confusion matrix'" in page) == drawn
    assert ("The confusion matrix could not be drawn: ValueError: " in page) != drawn


def test_a_figure_that_cannot_be_drawn_leaves_the_page_and_says_why(monkeypatch):
    import autograder.reports.plots
    from autograder.reports.feedback import feedback_html

    def broken(*args, **kwargs):
        raise ValueError("Axis limits cannot be NaN or Inf")

    monkeypatch.setattr(autograder.reports.plots, "learning_curves", broken)
    page = feedback_html(class_report("ben", history=NON_FINITE_HISTORY, confusion=GOOD_CONFUSION))
    assert "The learning curves could not be drawn: ValueError: Axis limits cannot be NaN or Inf" in page
    assert "alt='Confusion matrix'" in page and "alt='Learning curves'" not in page
    assert "loss: inf at epoch 2, NaN at epoch 3 (not drawn)" in page  # the numbers are still said


def test_json_safe_writes_non_finite_numbers_as_strings():
    import numpy as np

    from autograder.judge.report import json_safe

    value = {"a": [INF, -INF, NAN, 1.5, 2, True, None, "x"], "b": (np.float32("nan"), np.int64(3)),
             "c": {"d": np.array([1.0, np.inf])}}
    safe = json_safe(value)
    assert strict_json(json.dumps(safe, allow_nan=False)) == {
        "a": ["Infinity", "-Infinity", "NaN", 1.5, 2, True, None, "x"], "b": ["NaN", 3],
        "c": {"d": [1.0, "Infinity"]},
    }
    assert json_safe({"loss": [0.5]}) == {"loss": [0.5]}


def test_every_json_and_csv_written_is_strict_and_shows_non_finite_numbers(tmp_path):
    from autograder.judge.evidence import CheckResult
    from autograder.reports.formats import write_csv, write_gradescope, write_json

    broken = class_report("fay")
    broken.score = NAN
    broken.checks[0] = CheckResult(broken.checks[0].id, INF, broken.checks[0].max_points, False, "odd")
    broken.usage = {"seconds": INF}
    reports = [broken, class_report("gus")]
    write_json(reports, tmp_path / "grades.json")
    graded = strict_json((tmp_path / "grades.json").read_text())
    assert graded[0]["score"] == "NaN" and graded[0]["checks"][0]["points"] == "Infinity"
    written = write_gradescope(reports, tmp_path / "gradescope")
    assert len(written) == 2
    assert strict_json(written[0].read_text())["score"] == "NaN"
    write_csv(reports, tmp_path / "grades.csv")
    with open(tmp_path / "grades.csv", newline="", encoding="utf-8-sig") as handle:
        rows = list(csv.DictReader(handle))
    assert rows[0]["score"] == "NaN" and rows[0][CHECKS[0].id] == "Infinity" and rows[1]["score"] == "100"


def test_atomic_write_syncs_the_file_before_it_replaces_the_old_one(tmp_path, monkeypatch):
    import os

    from autograder.files import atomic_write

    calls = []
    fsync, replace = os.fsync, os.replace
    monkeypatch.setattr(os, "fsync", lambda fd: (calls.append("fsync"), fsync(fd))[1])
    monkeypatch.setattr(os, "replace", lambda *a: (calls.append("replace"), replace(*a))[1])
    atomic_write(tmp_path / "out" / "a.txt", "été\n")
    assert (tmp_path / "out" / "a.txt").read_text(encoding="utf-8") == "été\n"
    assert calls.index("fsync") < calls.index("replace")

    def full(*args):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", full)
    with pytest.raises(OSError):
        atomic_write(tmp_path / "out" / "a.txt", "new")
    assert (tmp_path / "out" / "a.txt").read_text(encoding="utf-8") == "été\n"
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["a.txt"]  # no temporary file left behind


# --- The class overview ------------------------------------------------------------------------------------------

def failing(report, check_id: str, message: str):
    from autograder.judge.evidence import CheckResult

    index = [c.id for c in report.checks].index(check_id)
    old = report.checks[index]
    report.checks[index] = CheckResult(check_id, 0, old.max_points, False, message)
    report.score -= old.points
    return report


def test_the_class_overview_counts_each_mistake_and_draws_what_is_finite(tmp_path):
    from autograder.reports.class_report import test_accuracy, write_class_report

    reports = a_class()
    for name, accuracy in (("eve", "0.6100"), ("fred", "0.7234"), ("gia", "0.5")):
        reports.append(failing(class_report(name, confusion=GOOD_CONFUSION, usage={"seconds": 20.5}), "test_accuracy",
                               f"test accuracy {accuracy}, below the minimum 0.85: check the model"))
    failing(reports[0], "compile", "the loss is 'categorical_crossentropy': the labels are integers")
    reports[1].score = NAN
    write_class_report(reports, tmp_path / "class.html")
    page = (tmp_path / "class.html").read_text()

    assert "7 submissions: 6 graded, 1 could not be graded." in page
    # One mistake made by three students is one row, counted 3, with one of their messages.
    assert "<td class='count'>3</td><td>test accuracy …, below the minimum …: check the model</td>" in page
    assert "test accuracy 0.6100, below the minimum 0.85: check the model" in page
    assert "<td>test_accuracy</td><td>20</td><td>3/6</td><td>50 %</td>" in page
    assert "<td>compile</td><td>15</td><td>5/6</td>" in page
    assert "1 × the notebook is not valid JSON" in page
    assert "1 of 7 not a finite number: not drawn." in page  # ben's NaN score
    assert test_accuracy(reports[0]) == pytest.approx(900 / 990) and test_accuracy(reports[2]) is None
    images = [src for alt, src in FeedbackPage.read(tmp_path / "class.html").images]
    assert len(images) == 4
    for src in images:
        assert base64.b64decode(src.split(",", 1)[1]).startswith(b"\x89PNG")
    for cells in ("<td>ann</td><td>85</td><td>0.909091</td><td>12.3</td><td>900</td>",
                  "<td>ben</td><td>NaN</td><td>0.909091</td><td>inf</td><td>NaN</td>"):
        assert cells in page


def test_the_class_overview_counts_a_mistake_once_whatever_language_each_student_read_it_in(tmp_path):
    """A class that reads Chinese first: the overview is the instructor's, in English, and one mistake is
    one row however many languages the students read it in (a message within a message, and a check's
    several problems joined, included)."""
    from autograder.i18n import _, in_english, speaking
    from autograder.reports.class_report import write_class_report

    def messages():
        low = _("test accuracy {accuracy}, below the minimum {minimum}: check the model, the loss, the "
                "optimizer and the number of epochs").format(accuracy="0.6100", minimum=0.85)
        nested = _("training failed: {reason}").format(
            reason=_("the training ran longer than the grader allows ({seconds} s) and was stopped").format(seconds=60))
        problems = "; ".join([
            _("there is no validation data: pass validation_data=(X_valid, y_valid) to model.fit"),
            _("the training weighted its samples or classes: leave out sample_weight and class_weight")])
        return low, nested, problems

    def damaged(line):
        return _("not valid JSON (line {line}, column {column}: {error}); the file was damaged or is not a "
                 "notebook: submit the .ipynb file Jupyter saved").format(line=line, column=1, error="Expecting value")

    english = messages()
    with speaking("zh_CN"):
        chinese = messages()
        raised = _("`{name}` raised {error}: {summary}")
    assert all(zh != en for zh, en in zip(chinese, english))
    assert [in_english(zh, "zh_CN") for zh in chinese] == list(english)
    assert [in_english(en, "en") for en in english] == list(english)

    reports = []
    for index, (lang, said, training) in enumerate([("en", english, 1), ("zh_CN", chinese, 1), ("en", english, 2),
                                                    ("zh_CN", chinese, 2)]):
        report = class_report(f"s{index}", confusion=GOOD_CONFUSION)
        report.lang = lang
        reports.append(failing(failing(report, "test_accuracy", said[0]), "training", said[training]))
    with speaking("zh_CN"):
        reports.append(class_report("zed", error=damaged(3)))
        reports[-1].lang = "zh_CN"
    reports.append(class_report("amy", error=damaged(1)))
    write_class_report(reports, tmp_path / "class.html")
    page = (tmp_path / "class.html").read_text()

    assert ("<td class='count'>4</td><td>test accuracy …, below the minimum …: check the model, the loss, the "
            "optimizer and the number of epochs</td>") in page
    assert "<td class='count'>2</td><td>training failed: the training ran longer" in page
    assert "<td class='count'>2</td><td>there is no validation data" in page
    assert "2 × not valid JSON (line …, column …: Expecting value); the file was damaged" in page
    assert "训练" not in page

    # What a student's code wrote stays as it was, in every language; a message read back only one way.
    student = "形状不对 (28, 28); 数据抛出 异常"
    assert in_english(raised.format(name="build_model", error="AssertionError", summary=student), "zh_CN") \
        == f"`build_model` raised AssertionError: {student}"
    english_with_chinese = f"`build_model` raised ValueError: {student}"
    assert in_english(english_with_chinese, "en") == english_with_chinese
    twice = raised.format(name="build_model", error="AssertionError", summary="` 抛出 x")  # the kit's words, twice
    assert in_english(twice, "zh_CN") == twice
    # A student's words that make a second message fit ("{epochs}为 {what}" here): neither is sure.
    second = raised.format(name="build_model", error="AssertionError", summary="形状应为 (28, 28)")
    assert in_english(second, "zh_CN") == second
    with speaking("zh_CN"):  # the student's error ends as another message does: two messages fit
        never = _("called with epochs={probe_epochs} and other arrays, `train_model` never called model.fit on the "
                  "model it was given").format(probe_epochs=3)
        words = "ValueError:" + never.split("3", 1)[1]
        probe = _("called with epochs={probe_epochs} and other arrays, `train_model` failed: {error}").format(
            probe_epochs=3, error=words)
    assert in_english(probe, "zh_CN") == probe
    with speaking("zh_CN"):  # a singular and its plural share one translation: neither is guessed
        titles = _("{wrong} images are not titled with their class name: {names}").format(wrong=5, names="…")
    assert in_english(titles, "zh_CN") == titles
    assert in_english("中; " * 333_333, "zh_CN") == "中; " * 333_333


def test_the_class_overview_marks_the_pass_mark_the_class_was_graded_with(tmp_path, monkeypatch):
    import autograder.reports.class_report as class_page
    from autograder.config import DEFAULT_PASS_MARK, Config

    drawn, histogram = [], class_page.histogram
    monkeypatch.setattr(class_page, "histogram", lambda *args: drawn.append(args) or histogram(*args))
    class_page.write_class_report(a_class(), tmp_path / "class.html", Config(pass_mark=0.7))
    page = (tmp_path / "class.html").read_text()
    [accuracies] = [args for args in drawn if args[2] == "test accuracy"]
    assert accuracies[4] == 0.7 and "pass mark 0.7" in page and f"pass mark {DEFAULT_PASS_MARK}" not in page
    drawn.clear()
    class_page.write_class_report(a_class(), tmp_path / "default.html")  # no config: the default
    [accuracies] = [args for args in drawn if args[2] == "test accuracy"]
    assert accuracies[4] == DEFAULT_PASS_MARK
    assert f"pass mark {DEFAULT_PASS_MARK}" in (tmp_path / "default.html").read_text()


@pytest.mark.parametrize("confusion, expected", [
    ([[90 if i == j else 1 for j in range(10)] for i in range(10)], 900 / 990),
    ([[3, 1], [0, 4]], 7 / 8),  # any square table of counts
    ([["NaN", 1], [0, 4]], None),  # a stored NaN, read back as strict JSON writes it
    ([[float("nan"), 1], [0, 4]], None),
    ([[float("inf"), 1], [0, 4]], None),
    ([[10**400, 1], [0, 4]], None),  # too large for a float: infinite
    ([[-3, 1], [0, 4]], None),
    ([[0, 0], [0, 0]], None),
    ([[1, 2, 3], [4, 5, 6]], None),  # not square
    ([[1, 2], [3]], None),
    ([], None),
    (None, None),
    ("not a table", None),
    ([[True, 0], [0, 1]], None),
])
def test_the_test_accuracy_is_one_formula_for_every_output(confusion, expected):
    """The class overview and Gradescope's leaderboard read the test accuracy from the report with one
    function: the confusion matrix's diagonal over its total, nothing for a table that is not one."""
    from autograder.judge.report import GradeReport
    from autograder.reports.class_report import test_accuracy
    from autograder.reports.formats import leaderboard

    report = GradeReport.ungraded("x.ipynb", "whatever")
    report.confusion = confusion
    assert report.test_accuracy == (None if expected is None else pytest.approx(expected))
    assert test_accuracy(report) == report.test_accuracy
    board = leaderboard(report)
    assert board == ({} if expected is None else
                     {"leaderboard": [{"name": "Test accuracy", "value": round(expected, 4), "order": "desc"}]})


def test_the_class_overview_escapes_what_a_student_wrote(tmp_path):
    from autograder.reports.class_report import write_class_report

    sneaky = failing(class_report("ann"), "normalize", "<img src=x onerror=alert(1)> is not 255")
    sneaky.student = "<script>alert(1)</script>"
    sneaky.error = None
    broken = class_report("ben", error="<b>bad</b>")
    write_class_report([sneaky, broken], tmp_path / "class.html")
    page = (tmp_path / "class.html").read_text()
    assert "<script>" not in page and "<img src=x" not in page and "<b>bad" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page and "&lt;img src=x onerror=alert(1)&gt;" in page


def test_the_class_overview_of_a_class_nobody_could_grade_still_writes(tmp_path):
    from autograder.reports.class_report import write_class_report

    write_class_report([class_report("dan", error="the notebook is not valid JSON")], tmp_path / "class.html")
    page = (tmp_path / "class.html").read_text()
    assert "1 submissions: 0 graded, 1 could not be graded." in page and "No test accuracy to draw." in page


# --- in the language the report was graded in ------------------------------------------------------------

def test_a_report_keeps_the_language_it_was_graded_in_beside_the_contract_s_json():
    from autograder.i18n import speaking
    from autograder.judge.report import GradeReport

    with speaking("zh_CN"):
        report = GradeReport.ungraded("x.ipynb", "the notebook is not valid JSON")
    assert report.lang == "zh_CN" and GradeReport.ungraded("x.ipynb", "why").lang == "en"
    assert GradeReport.from_payload(json.loads(json.dumps(report.payload()))).lang == "zh_CN"
    assert set(report.to_json()) == {"submission", "student", "score", "max_score", "error", "checks"}


ENGLISH_PAGE = ("Feedback for", ">PASS<", ">FAIL<", "<th>check</th>", "<th>message</th>", "Learning curves",
                "Confusion matrix", "Could not be graded")


def test_the_feedback_page_speaks_the_language_its_report_was_graded_in():
    from autograder.reports.feedback import feedback_html

    report = class_report("ann", history={"loss": [0.6, 0.4], "accuracy": [0.8, 0.9]}, confusion=GOOD_CONFUSION)
    report.checks[1] = dataclasses.replace(report.checks[1], points=0, passed=False)
    english = feedback_html(report)
    assert '<html lang="en">' in english and all(text in english for text in ENGLISH_PAGE[:7])
    report.lang = "zh_CN"
    chinese = feedback_html(report)
    assert '<html lang="zh-CN">' in chinese and "<th>检查</th>" in chinese and "<th>信息</th>" in chinese
    assert "ann 的反馈" in chinese and ">通过<" in chinese and ">失败<" in chinese
    assert "学习曲线" in chinese and "混淆矩阵" in chinese
    assert "class='fail'" in chinese and "class='pass'" in chinese  # the page's style keys on the status, not its word
    assert not [text for text in ENGLISH_PAGE if text in chinese]
    ungraded = class_report("dan", error="the notebook is not valid JSON")
    ungraded.lang = "zh_CN"
    assert "无法评分：the notebook is not valid JSON" in feedback_html(ungraded)


@pytest.mark.slow
def test_grading_prints_nothing_of_tensorflow_s_start_up_on_stderr(tmp_path):
    """TensorFlow's C++ side writes to stderr while it loads, before any log level applies: an instructor's
    terminal shows the grading, not "Could not find cuda drivers" (and a student's cell output neither).
    The grader imports it when the first submission calls ``fit`` (a thread, beside the others), else
    before reading the artifacts of one that never does: both are here."""
    import subprocess
    import sys

    result = subprocess.run(
        [sys.executable, "-m", "autograder", "grade", str(SUBMISSIONS / "unfilled_stubs.ipynb"),
         str(ATTACKS / "takes_one_step_per_epoch.ipynb"), "--results", str(tmp_path / "results")],
        capture_output=True, text=True, env={k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"},
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr == "", result.stderr
    assert "2 graded" in result.stdout


def test_a_history_of_long_or_many_series_names_is_drawn_short():
    """The series' names are the student's metric names, which Keras takes of any length: two of 500,000
    characters took the page 126 s to draw, in the grader, on every rerun (helper-80)."""
    from autograder.reports.plots import MAX_NAME, MAX_SERIES, curve_notes, learning_curves

    long = "x" * 500_000
    history = {"loss": [0.5] * 30, long: [0.8] * 30, "val_loss": [0.5] * 30, f"val_{long}": [0.8, INF] * 15,
               **{f"metric_{index}": [0.1] * 30 for index in range(40)}}
    fig = learning_curves(history)
    labels = [line.get_label() for line in fig.axes[0].get_lines()]
    assert len(labels) == MAX_SERIES + 1 and all(len(label) <= MAX_NAME + 100 for label in labels), labels
    assert labels[1] == "x" * (MAX_NAME - 1) + "…"
    assert labels[-1] == f"{len(history) - MAX_SERIES} more series: not drawn"
    notes = curve_notes(history)
    assert notes[0].startswith("val_" + "x" * (MAX_NAME - 5) + "…: inf at epochs")
    assert notes[-1] == f"{len(history) - MAX_SERIES} more series: not drawn"


def test_the_class_overview_shows_the_points_the_class_was_graded_with(tmp_path):
    """An instructor's autograder.toml gives normalize 50 points and split none: the page's table said 10 and 10."""
    import re

    from autograder.config import Config
    from autograder.reports.class_report import write_class_report

    write_class_report(a_class(), tmp_path / "class.html", Config(points={"normalize": 50, "split": 0}))
    page = (tmp_path / "class.html").read_text()
    rows = dict(re.findall(r"<tr><td>(\w+)</td><td>(\d+)</td><td>\d+/\d+</td>", page))
    assert rows["normalize"] == "50" and rows["split"] == "0" and rows["compile"] == "15", rows
