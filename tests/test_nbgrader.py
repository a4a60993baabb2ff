"""nbgrader: the committed student notebook is what generate_assignment makes, and a whole
generate_assignment → autograde → export round trip scores the reference 100 and the stubs 0."""

from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from autograder.assignment import ASSIGNMENT_ID, NOTEBOOK_NAME, REPO_ROOT, SOURCE_NOTEBOOK, STUDENT_NOTEBOOK
from autograder.judge.checks import CHECKS

RELEASED_FILES = ("conftest.py", "test_fashion_mnist_classifier.py")


def nbgrader(course: Path, *args: str) -> subprocess.CompletedProcess:
    # nbgrader runs alembic from PATH to create its gradebook, so the virtualenv's bin goes first.
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    result = subprocess.run(
        [sys.executable, "-m", "nbgrader", *args, f"--CourseDirectory.db_url=sqlite:///{course / 'gradebook.db'}"],
        cwd=course,
        env=env,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result


@pytest.fixture
def course(tmp_path) -> Path:
    """A fresh nbgrader course: the repository's config and source notebook, nothing else."""
    root = tmp_path / "course"
    shutil.copytree(REPO_ROOT / "solutions", root / "solutions")
    shutil.copy(REPO_ROOT / "nbgrader_config.py", root / "nbgrader_config.py")
    return root


def test_the_committed_student_notebook_is_what_generate_assignment_makes(course):
    nbgrader(course, "generate_assignment", ASSIGNMENT_ID, "--force")
    released = course / "assignments" / ASSIGNMENT_ID
    fresh = nbformat.read(released / NOTEBOOK_NAME, as_version=4)
    committed = nbformat.read(STUDENT_NOTEBOOK, as_version=4)
    assert fresh == committed, "the student notebook is stale: run `make assignment` and commit it"
    for name in RELEASED_FILES:
        assert (released / name).read_text() == (STUDENT_NOTEBOOK.parent / name).read_text()


def test_the_student_notebook_has_stubs_and_locked_checks_with_the_table_s_points():
    nb = nbformat.read(STUDENT_NOTEBOOK, as_version=4)
    solutions = [c for c in nb.cells if c.metadata.get("nbgrader", {}).get("solution")]
    assert len(solutions) == 7
    for cell in solutions:
        assert "raise NotImplementedError()" in cell.source
        assert "BEGIN SOLUTION" not in cell.source
    tests = {c.metadata.nbgrader.grade_id: c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade")}
    assert {f"check_{check.id}" for check in CHECKS} == set(tests)
    for check in CHECKS:
        cell = tests[f"check_{check.id}"]
        assert cell.metadata.nbgrader.points == check.points and cell.metadata.nbgrader.locked
        visible = f'check("{check.id}", globals())' in cell.source
        assert visible != check.hidden, check.id
    assert "HIDDEN TESTS" not in json.dumps(nb)


def test_the_source_notebook_keeps_its_hidden_tests():
    source = SOURCE_NOTEBOOK.read_text()
    assert "### BEGIN HIDDEN TESTS" in source and 'check(\\"test_accuracy\\", globals())' in source


@pytest.mark.slow
def test_autograde_and_export_score_the_reference_100_and_the_stubs_0(course):
    nbgrader(course, "db", "student", "add", "reference")
    nbgrader(course, "db", "student", "add", "unfilled")
    nbgrader(course, "generate_assignment", ASSIGNMENT_ID, "--force")
    for student, notebook in (("reference", SOURCE_NOTEBOOK), ("unfilled", STUDENT_NOTEBOOK)):
        folder = course / "submitted" / student / ASSIGNMENT_ID
        folder.mkdir(parents=True)
        shutil.copy(notebook, folder / NOTEBOOK_NAME)
    # The reference's own exploratory training (Keras's defaults in the kernel, minutes) earns nothing:
    # the training and test-accuracy checks train 30 epochs with the kit's trainer. Like a student who
    # tried it briefly, it trains 2 epochs here, and still gets every point.
    reference = course / "submitted" / "reference" / ASSIGNMENT_ID / NOTEBOOK_NAME
    nb = nbformat.read(reference, as_version=4)
    (cell,) = [c for c in nb.cells if c.cell_type == "code" and c.source.startswith("history = train_model(")]
    assert "epochs=30" in cell.source
    cell.source = cell.source.replace("epochs=30", "epochs=2")
    nbformat.write(nb, reference)
    nbgrader(course, "autograde", ASSIGNMENT_ID)
    nbgrader(course, "export")

    with open(course / "grades.csv", newline="") as grades:
        scores = {row["student_id"]: float(row["score"]) for row in csv.DictReader(grades)}
    assert scores == {"reference": 100.0, "unfilled": 0.0}

    # Every test cell of the reference passed, TensorFlow's stderr chatter notwithstanding.
    graded = nbformat.read(course / "autograded" / "reference" / ASSIGNMENT_ID / NOTEBOOK_NAME, as_version=4)
    for cell in graded.cells:
        if cell.metadata.get("nbgrader", {}).get("grade"):
            assert not [o for o in cell.outputs if o.output_type == "error" or o.get("name") == "stderr"], cell.source


def test_autograder_grade_writes_nbgrader_s_gradebook_for_export(course, real_data_dir):
    from autograder.cli import main

    nbgrader(course, "generate_assignment", ASSIGNMENT_ID, "--force")
    attacks = Path(__file__).parent / "attacks"
    pairs = (("alice", attacks / "edits_test_cells_points_and_setup.ipynb"), ("bob", STUDENT_NOTEBOOK))
    for student, notebook in pairs:
        folder = course / "submitted" / student / ASSIGNMENT_ID
        folder.mkdir(parents=True)
        shutil.copy(notebook, folder / NOTEBOOK_NAME)
    status = main([
        "grade", str(course / "submitted"), "--unsandboxed", "--data-dir", str(real_data_dir),
        "--results", str(course / "results"), "--nbgrader-db", f"sqlite:///{course / 'gradebook.db'}",
    ])
    assert status == 0
    nbgrader(course, "export")
    with open(course / "grades.csv", newline="") as grades:
        scores = {row["student_id"]: float(row["score"]) for row in csv.DictReader(grades)}
    assert scores == {"alice": 10.0, "bob": 0.0}


def test_a_gradebook_that_does_not_exist_is_named_and_not_made(tmp_path, capsys, monkeypatch):
    """An instructor who gives ``--nbgrader-db`` before ``generate_assignment`` made the gradebook is told
    to run it, whether or not nbgrader's ``alembic`` is on PATH, and no empty gradebook is left behind
    for nbgrader to trip on later."""
    from autograder.cli import GRADE_OUTPUTS, main, write_outputs
    from autograder.errors import GradebookNotReady
    from autograder.reports.gradebook import write_nbgrader_gradebook

    monkeypatch.setenv("PATH", "/usr/bin:/bin")  # the venv's bin, with alembic, not on it
    missing = tmp_path / "course" / "gradebook.db"
    with pytest.raises(GradebookNotReady, match="generate_assignment"):
        write_nbgrader_gradebook([], f"sqlite:///{missing}")
    assert not missing.exists() and not missing.parent.exists()

    args = argparse.Namespace(**{option.removeprefix("--").replace("-", "_"): None for option, *_ in GRADE_OUTPUTS})
    args.nbgrader_db = f"sqlite:///{missing}"
    assert write_outputs(args, []) == ["--nbgrader-db"]
    assert "nbgrader generate_assignment fashion_mnist" in capsys.readouterr().err

    submitted = tmp_path / "submitted" / "alice" / ASSIGNMENT_ID
    submitted.mkdir(parents=True)
    shutil.copy(STUDENT_NOTEBOOK, submitted / NOTEBOOK_NAME)
    results = tmp_path / "results"
    # Refused before the class is graded, not after.
    command = ["grade", str(tmp_path / "submitted"), "--results", str(results), "--nbgrader-db", args.nbgrader_db]
    assert main(command) == 2
    assert "generate_assignment" in capsys.readouterr().err
    assert not results.exists() and not missing.exists()


def test_a_gradebook_without_the_assignment_says_to_generate_it(tmp_path, monkeypatch):
    from nbgrader.api import Gradebook

    from autograder.errors import GradebookNotReady
    from autograder.reports.gradebook import write_nbgrader_gradebook

    monkeypatch.setenv("PATH", f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")
    url = f"sqlite:///{tmp_path / 'gradebook.db'}"
    with Gradebook(url):  # made by another course's nbgrader: no fashion_mnist in it
        pass
    with pytest.raises(GradebookNotReady, match="generate_assignment"):
        write_nbgrader_gradebook([], url)


def test_a_gradebook_is_found_as_sqlalchemy_reads_its_url_and_an_empty_file_is_no_gradebook(tmp_path, monkeypatch):
    from nbgrader.api import Gradebook

    from autograder.errors import GradebookNotReady
    from autograder.reports.gradebook import check_gradebook, sqlite_file

    monkeypatch.setenv("PATH", f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")
    real = tmp_path / "my grades.db"
    with Gradebook(f"sqlite:///{real}") as gradebook:
        gradebook.add_assignment(ASSIGNMENT_ID)
    for url in (f"sqlite:///{real}", f"sqlite:///{real}?timeout=30", f"sqlite:///{str(real).replace(' ', '%20')}",
                f"sqlite+pysqlite:///{real}"):
        assert sqlite_file(url) == real, url  # hidden from every sandbox, and checked
        check_gradebook(url)
    assert sqlite_file("postgresql://grader@db/course") is None

    empty = tmp_path / "empty.db"  # `touch gradebook.db`, or left by a run that failed
    empty.touch()
    monkeypatch.setenv("PATH", "/usr/bin:/bin")
    with pytest.raises(GradebookNotReady, match="generate_assignment"):
        check_gradebook(f"sqlite:///{empty}")
    assert empty.stat().st_size == 0  # read, never written
