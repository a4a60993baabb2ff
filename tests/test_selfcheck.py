"""A student's self-check: `autograder check` and `pytest` in the released folder."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from autograder.assignment import STUDENT_NOTEBOOK

SUBMISSIONS = Path(__file__).parent / "submissions"


def released_folder_with(tmp_path: Path, notebook: Path) -> Path:
    """The released assignment folder as a student has it, holding the given notebook."""
    folder = tmp_path / "fashion_mnist"
    shutil.copytree(STUDENT_NOTEBOOK.parent, folder)
    shutil.copy(notebook, folder / STUDENT_NOTEBOOK.name)
    return folder


def pytest_in(folder: Path, *args: str) -> subprocess.CompletedProcess:
    # -p no:cacheprovider: nothing written beside the student's notebook; -c /dev/null: the student's
    # folder has no pytest configuration of its own, so neither may this run.
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-c", "/dev/null", "-p", "no:cacheprovider", "-rs", *args],
        cwd=folder,
        capture_output=True,
        text=True,
    )


def test_check_on_the_unfilled_notebook_says_not_done_and_what_was_skipped(capsys):
    from autograder.cli import main

    assert main(["check", str(STUDENT_NOTEBOOK)]) == 0
    out = capsys.readouterr().out
    assert out.count("TODO") == 7 and "Traceback" not in out
    assert "SKIP  training" in out and "autograder check --full" in out
    assert "Hidden checks (20 points" in out


def test_check_on_a_mistake_names_it(capsys):
    from autograder.cli import main

    main(["check", str(SUBMISSIONS / "labels_divided_by_255.ipynb")])
    out = capsys.readouterr().out
    assert "FAIL  split" in out and "the labels were divided by 255" in out
    assert "Score on the checks run: 60/70" in out


def test_pytest_in_the_released_folder_reports_stubs_as_not_done(tmp_path):
    result = pytest_in(released_folder_with(tmp_path, STUDENT_NOTEBOOK))
    assert result.returncode == 1
    assert "7 failed, 1 skipped" in result.stdout
    assert "not done yet: `normalize` still raises NotImplementedError" in result.stdout
    assert "pytest --full" in result.stdout
    assert "Traceback" not in result.stdout


def test_pytest_in_the_released_folder_passes_a_finished_notebook(tmp_path):
    result = pytest_in(released_folder_with(tmp_path, SUBMISSIONS / "passes_all.ipynb"))
    assert result.returncode == 0, result.stdout
    assert "7 passed, 1 skipped" in result.stdout


@pytest.mark.slow
def test_pytest_full_also_trains_and_passes(tmp_path):
    result = pytest_in(released_folder_with(tmp_path, SUBMISSIONS / "passes_all.ipynb"), "--full")
    assert result.returncode == 0, result.stdout
    assert "8 passed" in result.stdout
