"""Grades no student can forge or spoil: attacks graded the way a class is, in a batch beside honest
classmates, in nbgrader's layout, with two workers."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from autograder.batch.local import grade_notebooks

ROOT = Path(__file__).parents[1]
ATTACKS = Path(__file__).parent / "attacks"
SUBMISSIONS = Path(__file__).parent / "submissions"
NOTEBOOK = "fashion_mnist_classifier.ipynb"


def class_of(tmp_path: Path, students: dict[str, Path]) -> list[Path]:
    """nbgrader's layout: submitted/<student>/fashion_mnist/<the same notebook name for everyone>."""
    paths = []
    for student, notebook in students.items():
        target = tmp_path / "submitted" / student / "fashion_mnist" / NOTEBOOK
        target.parent.mkdir(parents=True)
        shutil.copy(notebook, target)
        paths.append(target)
    return paths


def by_student(reports) -> dict:
    return {Path(report.submission).parent.parent.name: report for report in reports}


@pytest.mark.slow
def test_two_notebooks_agreeing_on_a_poisoned_training_spoil_no_classmate(tmp_path, real_data_dir):
    paths = class_of(tmp_path, {
        # Started first (dead code makes them look long): an int32 Flatten, whose description differs
        # from the lesson's in a dtype only, and two that zero the weights after fit.
        "eve": ATTACKS / "poisons_with_an_int32_flatten.ipynb",
        "mallory": ATTACKS / "poisons_the_shared_training_first.ipynb",
        "trudy": ATTACKS / "poisons_the_shared_training_second.ipynb",
        "ann": SUBMISSIONS / "passes_all.ipynb",
        "bob": SUBMISSIONS / "passes_all.ipynb",
    })
    reports = by_student(grade_notebooks(paths, data_dir=real_data_dir, workers=2))
    scores = {name: r.score for name, r in reports.items()}
    assert scores == {"eve": 80, "mallory": 100, "trudy": 100, "ann": 100, "bob": 100}
    # Two descriptions of the 30 epochs, two trainings: what the others replay is the trainer's own result.
    assert sum(r.usage["trainings_run"] for r in reports.values()) == 3  # and the short check of epochs, once
    assert sum(r.usage["trainings_stored"] for r in reports.values()) == 3
    assert sum(any("training reused" in note for note in r.notes) for r in reports.values()) == 3


@pytest.mark.slow
def test_a_notebook_gets_the_same_report_with_and_without_the_sandbox(real_data_dir):
    notebooks = [SUBMISSIONS / "loss_as_function.ipynb", SUBMISSIONS / "ten_epochs_only.ipynb"]
    sandboxed = grade_notebooks(notebooks, data_dir=real_data_dir)
    unsandboxed = grade_notebooks(notebooks, data_dir=real_data_dir, sandbox=False)
    assert [r.to_json() for r in sandboxed] == [r.to_json() for r in unsandboxed]
    assert [r.score for r in sandboxed] == [100, 90]


@pytest.mark.slow
def test_a_training_that_diverges_to_nan_breaks_no_output_of_the_class(tmp_path, real_data_dir, capsys,
                                                                       kept_trainings):
    from autograder.cli import main

    class_of(tmp_path, {"nan": ATTACKS / "diverges_to_nan.ipynb", "ann": SUBMISSIONS / "passes_all.ipynb"})
    out = tmp_path / "out"
    status = main([
        "grade", str(tmp_path / "submitted"), "--workers", "2", "--data-dir", str(real_data_dir),
        "--results", str(out / "results"), "--json", str(out / "grades.json"), "--csv", str(out / "grades.csv"),
        "--gradescope", str(out / "gradescope"), "--feedback", str(out / "feedback"),
        "--trainings", str(kept_trainings),
    ])
    assert status == 0, capsys.readouterr().err

    def strict(text):
        return json.loads(text, parse_constant=lambda token: pytest.fail(f"{token} in strict JSON"))

    graded = {
        Path(entry["submission"]).parent.parent.name: entry for entry in strict((out / "grades.json").read_text())
    }
    assert graded["nan"]["score"] == 80 and graded["ann"]["score"] == 100
    stored = [strict(path.read_text()) for path in (out / "results").glob("*.json")]
    assert any("NaN" in json.dumps(result["feedback"]["history"]) for result in stored)
    assert list((out / "feedback").rglob("*.html")) and list((out / "gradescope").rglob("results.json"))
    assert (out / "grades.csv").read_text().count("\n") == 3


def test_keras_is_one_without_the_known_safe_mode_bypasses():
    from importlib.metadata import version

    text = (ROOT / "pyproject.toml").read_text()
    lowest = re.search(r'"keras>=([0-9.]+)', text)[1]
    assert tuple(map(int, lowest.split("."))) >= (3, 14, 0)
    installed = tuple(map(int, version("keras").split(".")[:3]))
    assert installed >= (3, 14, 0)
