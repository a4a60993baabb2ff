"""`autograder grade`'s reports: the contract's JSON, the CSV gradebook and Gradescope's results.json agree."""

from __future__ import annotations

import csv
import json
from pathlib import Path

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
    ])
    assert status == 0
    out = capsys.readouterr().out
    assert "2 submissions: 1 graded, 1 could not be graded" in out

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
        assert [(t["name"], t["score"], t["output"]) for t in results["tests"]] == [
            (c["id"], c["points"], c["message"]) for c in entry["checks"]
        ]
        hidden = {t["name"] for t in results["tests"] if t["visibility"] != "visible"}
        assert hidden == {check.id for check in CHECKS if check.hidden}
