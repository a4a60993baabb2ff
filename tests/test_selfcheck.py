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


# --- the notebook's check cells (autograder.nbgrader_cells), in this process as in a kernel ----------


@pytest.fixture
def kernel(monkeypatch):
    """A fresh kernel's check cells, whose trainer trains on a few hundred images (seconds, not a minute)."""
    from autograder import nbgrader_cells
    from autograder.trainer.service import Trainer

    monkeypatch.setattr(nbgrader_cells, "_kernel_state", {})
    trainings = []
    train = Trainer.train

    def small(self, model, arguments, position):
        trainings.append(arguments["epochs"])
        X_valid, y_valid = arguments["validation_data"][:2]
        arguments = {**arguments, "x": arguments["x"][:320], "y": arguments["y"][:320],
                     "validation_data": (X_valid[:64], y_valid[:64])}
        return train(self, model, arguments, position)

    monkeypatch.setattr(Trainer, "train", small)
    return nbgrader_cells, trainings


def rerun(function):
    """The function a cell defines when it is run again: the same code, a new object."""
    import types

    return types.FunctionType(function.__code__, function.__globals__, function.__name__, function.__defaults__)


def test_the_training_check_still_sees_the_training_after_another_function_s_cell_and_check_ran(
    kernel, reference_functions, capsys
):
    cells, trainings = kernel
    namespace = dict(reference_functions)
    cells.check("training", namespace)
    namespace["normalize"] = rerun(namespace["normalize"])
    cells.check("normalize", namespace)
    cells.check("training", namespace)  # said "the grader received no record of your training"
    out = capsys.readouterr().out
    assert out.count("✓ training") == 2 and "✓ normalize" in out
    assert trainings.count(30) == 1, "a function the training does not use changed: the training is kept"
    namespace["train_model"] = rerun(namespace["train_model"])
    cells.check("training", namespace)
    assert trainings.count(30) == 2, "train_model changed: trained again"
