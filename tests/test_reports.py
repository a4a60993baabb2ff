"""`autograder grade`'s reports: the contract's JSON, the CSV gradebook and Gradescope's results.json agree."""

from __future__ import annotations

import base64
import csv
import json
from html.parser import HTMLParser
from pathlib import Path

import pytest

from autograder.checks import CHECKS
from autograder.cli import main

SUBMISSIONS = Path(__file__).parent / "submissions"
CONTRACT_FIELDS = {"submission", "score", "max_score", "error", "checks"}
CHECK_FIELDS = {"id", "points", "max_points", "passed", "message"}


def test_json_csv_and_gradescope_agree(tmp_path, real_data_dir, capsys):
    notebooks = [SUBMISSIONS / "unfilled_stubs.ipynb", SUBMISSIONS / "not_json.ipynb"]
    status = main([
        "grade", *map(str, notebooks), "--unsandboxed", "--data-dir", str(real_data_dir),
        "--results", str(tmp_path / "results"), "--json", str(tmp_path / "grades.json"),
        "--csv", str(tmp_path / "grades.csv"), "--gradescope", str(tmp_path / "gradescope"),
        "--feedback", str(tmp_path / "feedback"),
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

    with open(tmp_path / "grades.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    for row, entry in zip(rows, graded):
        assert row["submission"] == entry["submission"] and int(row["score"]) == entry["score"]
        assert all(int(row[c["id"]]) == c["points"] for c in entry["checks"])

    for entry in graded:
        results = json.loads((tmp_path / "gradescope" / Path(entry["submission"]).stem / "results.json").read_text())
        assert results["score"] == entry["score"] and results["max_score"] == entry["max_score"]
        assert isinstance(results["execution_time"], int) and results["execution_time"] >= 0
        assert [(t["name"], t["score"], t["output"]) for t in results["tests"]] == [
            (c["id"], c["points"], c["message"]) for c in entry["checks"]
        ]
        hidden = {t["name"] for t in results["tests"] if t["visibility"] != "visible"}
        assert hidden == {check.id for check in CHECKS if check.hidden}

    for entry in graded:
        page = FeedbackPage.read(tmp_path / "feedback" / Path(entry["submission"]).stem / "feedback.html")
        assert page.score == str(entry["score"])
        assert [row[1:] for row in page.rows] == [[c["id"], f"{c['points']}/{c['max_points']}", c["message"]] for c in entry["checks"]]
        assert page.images == []  # nothing trained, nothing to draw


class FeedbackPage(HTMLParser):
    """What a reader sees on a feedback page: the score, the table's rows, the images."""

    def __init__(self):
        super().__init__()
        self.score, self.rows, self.images, self._cell, self._in_score = None, [], [], None, False

    @classmethod
    def read(cls, path: Path) -> "FeedbackPage":
        page = cls()
        page.feed(path.read_text())
        return page

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "span" and attrs.get("class") == "score":
            self._in_score = True
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
        self._in_score = False if tag == "span" else self._in_score

    def handle_data(self, data):
        if self._in_score:
            self.score = data
        if self._cell is not None:
            self._cell += data


@pytest.mark.slow
def test_the_feedback_page_of_a_trained_model_shows_its_curves_and_confusion_matrix(tmp_path, real_data_dir):
    notebook = SUBMISSIONS / "passes_all.ipynb"
    assert main(["grade", str(notebook), "--unsandboxed", "--data-dir", str(real_data_dir),
                 "--results", str(tmp_path / "results"), "--feedback", str(tmp_path / "feedback")]) == 0
    page = FeedbackPage.read(tmp_path / "feedback" / "passes_all" / "feedback.html")
    assert page.score == "100"
    assert [alt for alt, _ in page.images] == ["Learning curves", "Confusion matrix"]
    for _, src in page.images:
        assert src.startswith("data:image/png;base64,")
        assert base64.b64decode(src.split(",", 1)[1]).startswith(b"\x89PNG")
