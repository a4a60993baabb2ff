"""A student's self-check: `autograder check` and `pytest` in the released folder."""

from __future__ import annotations

import json
import re
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


def test_check_on_the_unfilled_notebook_says_not_done(capsys):
    from autograder.cli import main

    assert main(["check", str(STUDENT_NOTEBOOK)]) == 0
    out = capsys.readouterr().out
    assert out.count("TODO") == 8 and "Traceback" not in out
    assert "TODO  training" in out and "quick check" in out
    assert "Hidden checks (20 points" in out


def test_check_hints_name_the_notebook_s_real_path(capsys, tmp_path):
    from autograder.cli import main

    notebook = tmp_path / "my work.ipynb"
    shutil.copy(SUBMISSIONS / "passes_all.ipynb", notebook)
    main(["check", str(notebook)])
    out = capsys.readouterr().out
    assert "SKIP  training" in out and "the quick check passed" in out
    assert f"autograder check --full '{notebook}'" in out and "NOTEBOOK" not in out


def notebook_with_train_model(tmp_path: Path, body: str) -> Path:
    """The reference notebook whose `train_model` is the given body."""
    import nbformat

    from autograder.assignment import SOURCE_NOTEBOOK

    nb = nbformat.read(SOURCE_NOTEBOOK, as_version=4)
    cell = next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == "train_model")
    cell.source = f"def train_model(model, X_train, y_train, X_valid, y_valid, epochs=30):\n    {body}\n"
    path = tmp_path / "submission.ipynb"
    nbformat.write(nb, path)
    return path


@pytest.mark.parametrize(
    "body, expected",
    [
        ("return model.fit(X_train, y_train, epochs=30, validation_data=(X_valid, y_valid))",
         "was asked for epochs=2 and the model trained for 30"),
        ("return model.fit(X_train, y_train, epochs=epochs)", "there is no validation data"),
        ("return model.fit(X_train, y_train, epochs=epochs, validation_data=(X_train, y_train))",
         "not validated on the validation set"),
        ("model.fit(X_train, y_train, epochs=epochs, validation_data=(X_valid, y_valid))",
         "`train_model` returned NoneType: return the History object that model.fit returns"),
    ],
    ids=["hard_coded_epochs", "no_validation", "validated_on_training_data", "history_not_returned"],
)
def test_the_quick_training_check_fails_a_train_model_that_ignores_its_arguments(capsys, tmp_path, body, expected):
    from autograder.cli import main

    main(["check", str(notebook_with_train_model(tmp_path, body))])
    out = capsys.readouterr().out
    assert "FAIL  training" in out and expected in out, out
    assert "Score on the checks run: 70/80" in out


def test_a_history_of_two_fit_calls_merged_into_the_first_is_the_history_fit_returned(capsys, tmp_path):
    """Training in two calls and returning the first History, extended by the second: the check takes
    a History any of the fit calls returned, not only the last's (helper-57 F5)."""
    from autograder.cli import main

    body = "\n    ".join([
        "first = model.fit(X_train, y_train, epochs=epochs // 2, validation_data=(X_valid, y_valid))",
        "rest = model.fit(X_train, y_train, epochs=epochs - epochs // 2, validation_data=(X_valid, y_valid))",
        "for name, values in rest.history.items():",
        "    first.history[name].extend(values)",
        "return first",
    ])
    main(["check", str(notebook_with_train_model(tmp_path, body))])
    out = capsys.readouterr().out
    assert "SKIP  training" in out and "the quick check passed" in out, out


def test_a_keyboard_interrupt_in_a_cell_fails_that_cell_in_a_self_check_as_in_grading(capsys, tmp_path):
    """The student's own ``raise KeyboardInterrupt`` (a way to stop Run All) is not the person's Ctrl-C
    (helper-59 F4)."""
    import nbformat

    from autograder.cli import main

    nb = nbformat.read(SUBMISSIONS / "passes_all.ipynb", as_version=4)
    cell = next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == "normalize")
    cell.source += "\nraise KeyboardInterrupt\n"
    path = tmp_path / "submission.ipynb"
    nbformat.write(nb, path)
    assert main(["check", str(path)]) != 130
    assert "PASS  normalize" in capsys.readouterr().out


def test_check_on_a_mistake_names_it(capsys):
    from autograder.cli import main

    main(["check", str(SUBMISSIONS / "labels_divided_by_255.ipynb")])
    out = capsys.readouterr().out
    assert "FAIL  split" in out and "the labels were divided by 255" in out
    assert "Score on the checks run: 60/70" in out


def test_pytest_in_the_released_folder_reports_stubs_as_not_done(tmp_path):
    result = pytest_in(released_folder_with(tmp_path, STUDENT_NOTEBOOK))
    assert result.returncode == 1
    assert "8 failed" in result.stdout
    assert "not done yet: `normalize` still raises NotImplementedError" in result.stdout
    assert "Traceback" not in result.stdout


def test_pytest_in_the_released_folder_passes_a_finished_notebook(tmp_path):
    result = pytest_in(released_folder_with(tmp_path, SUBMISSIONS / "passes_all.ipynb"))
    assert result.returncode == 0, result.stdout
    assert "7 passed, 1 skipped" in result.stdout and "pytest --full" in result.stdout


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
    captured = capsys.readouterr()
    out = captured.out
    assert out.count("✓ training") == 2 and "✓ normalize" in out
    assert out.count("epoch 30/30") == 1 and captured.err == "", "a line per epoch, on stdout"
    assert trainings.count(30) == 1, "a function the training does not use changed: the training is kept"
    namespace["train_model"] = rerun(namespace["train_model"])
    cells.check("training", namespace)
    assert trainings.count(30) == 2, "train_model changed: trained again"


def test_a_failed_check_is_one_line_with_its_points_and_a_passed_one_prints_one(kernel, reference_functions, capsys):
    cells, _ = kernel
    namespace = dict(reference_functions)
    cells.check("normalize", namespace)
    assert capsys.readouterr().out.startswith("✓ normalize (10/10 points): ")
    namespace["normalize"] = lambda images: images
    with pytest.raises(AssertionError) as raised:  # nbgrader counts the error: 0 points
        cells.check("normalize", namespace)
    assert raised.value._render_traceback_() == [str(raised.value)]  # what Jupyter shows instead of a traceback
    assert str(raised.value).startswith("✗ normalize (0/10 points): ") and "\n" not in str(raised.value)


def test_the_summary_lists_every_public_check_with_points_and_result(kernel, reference_functions, capsys):
    from autograder.judge.checks import CHECKS

    cells, _ = kernel
    namespace = dict(reference_functions)
    namespace["predict_labels"] = lambda model, images: None
    cells.summary(namespace)
    out = capsys.readouterr().out
    lines = out.splitlines()
    header = next(index for index, line in enumerate(lines) if line.startswith("check "))  # after the epochs
    table = dict(line.split(None, 1) for line in lines[header + 2:header + 11])
    assert list(table) == [check.id for check in CHECKS if not check.hidden] + ["total"]
    assert table["normalize"].split() == ["10/10", "✓", "passed"]
    assert table["predict_labels"].split() == ["0/5", "✗", "failed"]
    assert table["total"].split() == ["75/80"]
    assert "✗ predict_labels (0/5 points): " in out


def test_in_jupyter_the_set_up_is_silent_and_a_failed_check_shows_one_line_not_a_traceback(tmp_path):
    import nbformat
    from nbclient import NotebookClient

    from autograder.assignment import SOURCE_NOTEBOOK

    source = nbformat.read(SOURCE_NOTEBOOK, as_version=4)
    code = [c for c in source.cells if c.cell_type == "code"]
    first = code[: 1 + next(i for i, c in enumerate(code) if "setup" in c.metadata.get("tags", []))]
    nb = nbformat.v4.new_notebook(cells=[
        *(nbformat.v4.new_code_cell(cell.source) for cell in first),
        nbformat.v4.new_code_cell("def normalize(images):\n    raise NotImplementedError()"),
        nbformat.v4.new_code_cell('from autograder.nbgrader_cells import check\ncheck("normalize", globals())'),
    ])
    NotebookClient(nb, timeout=300, allow_errors=True).execute()
    assert len(first) == 2 and not [cell.outputs for cell in nb.cells[:2] if cell.outputs], (
        "TensorFlow's start-up messages reached the notebook"
    )
    [error] = nb.cells[-1].outputs
    assert error.output_type == "error" and error.ename == "FailedCheck"
    assert error.traceback == [error.evalue] and error.evalue.startswith("✗ normalize (0/10 points): not done yet")


# --- the student's install: the kit without the grader ------------------------------------------------

REPO_ROOT = Path(__file__).resolve().parent.parent
GRADING_ONLY = ("nbgrader", "nbclient", "distributed", "dask", "sqlalchemy", "alembic", "ruff")


def test_the_student_install_leaves_the_grader_to_the_grade_extra():
    import tomllib

    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]
    def names(specs):
        return {re.split(r"[;<>=~! \[]", spec, maxsplit=1)[0] for spec in specs}

    student, grade = names(project["dependencies"]), names(project["optional-dependencies"]["grade"])
    assert {"tensorflow", "keras", "numpy", "matplotlib", "nbformat", "pytest"} <= student
    assert not student & set(GRADING_ONLY), "the grader's packages are the `grade` extra"
    assert {"nbgrader", "distributed"} <= grade
    installed = re.search(r'pip install --quiet -e "\.\[([a-z,]+)\]"', (REPO_ROOT / "Makefile").read_text())
    assert installed and "grade" in installed.group(1).split(","), "make setup installs the grader for demo and test"


BLOCK_GRADING_MODULES = """
import importlib.abc, sys
BLOCKED = set(sys.argv[1].split(","))

class GradeExtraNotInstalled(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ModuleNotFoundError(f"No module named {name!r} (the grade extra is not installed)", name=name)

sys.meta_path.insert(0, GradeExtraNotInstalled())
"""


def test_the_notebook_and_the_self_check_work_without_the_grade_extra():
    script = BLOCK_GRADING_MODULES + """
from autograder.nbgrader_cells import check, quiet_tensorflow, summary
from autograder.cli import main
status = main(["check", sys.argv[2]])
loaded = sorted({name.split(".")[0] for name in sys.modules} & BLOCKED)
assert not loaded, loaded
sys.exit(status)
"""
    result = subprocess.run(
        [sys.executable, "-c", script, ",".join(GRADING_ONLY), str(STUDENT_NOTEBOOK)],
        capture_output=True, text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "TODO  normalize" in result.stdout
    assert result.stderr == "", "TensorFlow's start-up messages reached the terminal"


def test_the_released_folder_installs_the_kit_without_solutions_in_one_command(tmp_path):
    import zipfile

    source = tmp_path / "kit"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO_ROOT / name, source / name)
    shutil.copytree(REPO_ROOT / "autograder", source / "autograder", ignore=shutil.ignore_patterns("__pycache__"))
    folder = released_folder_with(tmp_path, STUDENT_NOTEBOOK)
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check"]
    built = subprocess.run([*pip, "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(folder), str(source)],
                           capture_output=True, text=True)
    assert built.returncode == 0, built.stderr
    [wheel] = folder.glob("*.whl")
    with zipfile.ZipFile(wheel) as archive:
        assert all(name.startswith(("autograder/", "fashion_mnist_autograder-")) for name in archive.namelist())
        metadata = next(archive.read(n).decode() for n in archive.namelist() if n.endswith("METADATA"))
    requires = [line for line in metadata.splitlines() if line.startswith("Requires-Dist:") and "extra ==" not in line]
    assert requires and not [line for line in requires if any(name in line for name in GRADING_ONLY)]
    # The one command the notebook's first cell gives, resolved (not downloaded) from the released folder.
    first_cell = json.loads((folder / STUDENT_NOTEBOOK.name).read_text())["cells"][0]
    assert "`pip install -r requirements.txt`" in "".join(first_cell["source"])
    report = tmp_path / "report.json"
    resolved = subprocess.run(
        [*pip, "install", "--dry-run", "--no-index", "--no-deps", "--ignore-installed", "-q",
         "-r", str(folder / "requirements.txt"), "--report", str(report)],
        cwd=tmp_path, capture_output=True, text=True,
    )
    assert resolved.returncode == 0, resolved.stderr
    [kit] = json.loads(report.read_text())["install"]
    assert kit["download_info"]["url"] == wheel.as_uri()
    assert not any("BEGIN SOLUTION" in path.read_text(errors="ignore") for path in folder.iterdir() if path.is_file())


# --- in the notebook's language: the Chinese release's self-check and check cells speak Chinese ---------

CHINESE_NOTEBOOK = STUDENT_NOTEBOOK.parent.parent / "fashion_mnist_zh" / STUDENT_NOTEBOOK.name
ENGLISH_LINES = ("Self-check of", "Score on the checks run", "Not done yet:", "Hidden checks", "quick check", "points")


def test_check_on_the_chinese_release_speaks_chinese_and_lang_en_english(capsys):
    from autograder.cli import main

    main(["check", str(CHINESE_NOTEBOOK)])
    out = capsys.readouterr().out
    assert out.startswith(f"自检：{CHINESE_NOTEBOOK}") and "隐藏检查（20 分" in out and "尚未完成" in out
    assert "未做  training" in out and "快速检查" in out, out
    assert "尚未完成：`normalize` 仍然抛出 NotImplementedError" in out, "the stubs' own lines speak Chinese too"
    assert not [line for line in ENGLISH_LINES if line in out] and "not done yet" not in out, out
    main(["check", "--lang", "en", str(CHINESE_NOTEBOOK)])
    out = capsys.readouterr().out
    assert out.startswith("Self-check of") and "TODO  training" in out and "Hidden checks (20 points" in out
    assert "not done yet: `normalize` still raises NotImplementedError" in out


def test_check_hints_in_chinese_keep_the_notebook_s_real_path(capsys, tmp_path):
    from autograder.cli import main

    notebook = tmp_path / "my work.ipynb"
    shutil.copy(SUBMISSIONS / "passes_all.ipynb", notebook)
    main(["check", "--lang", "zh_CN", str(notebook)])
    out = capsys.readouterr().out
    assert "跳过  training" in out and "快速检查已通过" in out
    assert f"autograder check --full '{notebook}'" in out and "30 个轮次" in out
    assert "已运行检查的得分：70/70" in out, out


def kernel_folder(tmp_path: Path, notebook: Path | None) -> Path:
    """The folder a kernel runs in: the notebook's own (Jupyter's and nbgrader's working directory)."""
    folder = tmp_path / "kernel"
    folder.mkdir()
    if notebook is not None:
        shutil.copy(notebook, folder / STUDENT_NOTEBOOK.name)
    return folder


def test_the_check_cells_of_the_chinese_release_speak_chinese(kernel, reference_functions, capsys, monkeypatch,
                                                              tmp_path):
    cells, _ = kernel
    monkeypatch.chdir(kernel_folder(tmp_path, CHINESE_NOTEBOOK))
    monkeypatch.delenv("JPY_SESSION_NAME", raising=False)
    monkeypatch.setenv("LANG", "en_US.UTF-8")
    namespace = dict(reference_functions)
    cells.check("normalize", namespace)
    assert capsys.readouterr().out.startswith("✓ normalize（10/10 分）：")
    namespace["normalize"] = lambda images: images
    with pytest.raises(AssertionError) as raised:
        cells.check("normalize", namespace)
    assert str(raised.value).startswith("✗ normalize（0/10 分）：") and "\n" not in str(raised.value)
    assert "图像没有缩放" in str(raised.value)
    namespace = dict(reference_functions, predict_labels=lambda model, images: None)
    cells.summary(namespace)
    out = capsys.readouterr().out
    assert "用 30 个轮次训练你的模型" in out
    lines = out.splitlines()
    header = next(index for index, line in enumerate(lines) if line.startswith("检查"))
    table = dict(line.split(None, 1) for line in lines[header + 2:header + 11])
    assert table["normalize"].split() == ["10/10", "✓", "通过"]
    assert table["predict_labels"].split() == ["0/5", "✗", "失败"]
    assert table["合计"].split() == ["75/80"]
    assert "隐藏检查（20 分" in out and "✗ predict_labels（0/5 分）：" in out
    assert not [line for line in ENGLISH_LINES if line in out], out


@pytest.mark.parametrize("notebook, lang, expected", [
    (STUDENT_NOTEBOOK, "zh_CN.UTF-8", "✓ normalize (10/10 points): "),  # the notebook's own language first
    (None, "zh_CN.UTF-8", "✓ normalize（10/10 分）："),  # else the locale's
    (None, "C.UTF-8", "✓ normalize (10/10 points): "),  # else English
])
def test_a_kernel_speaks_its_notebook_s_language_else_the_locale_s(kernel, reference_functions, capsys, monkeypatch,
                                                                   tmp_path, notebook, lang, expected):
    cells, _ = kernel
    monkeypatch.chdir(kernel_folder(tmp_path, notebook))
    for variable in ("JPY_SESSION_NAME", "LANGUAGE", "LC_ALL", "LC_MESSAGES"):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("LANG", lang)
    cells.check("normalize", dict(reference_functions))
    assert capsys.readouterr().out.startswith(expected)


def test_a_jupyter_kernel_reads_the_language_of_the_notebook_its_session_names(kernel, reference_functions, capsys,
                                                                               monkeypatch, tmp_path):
    cells, _ = kernel
    monkeypatch.chdir(kernel_folder(tmp_path, None))
    monkeypatch.setenv("JPY_SESSION_NAME", str(CHINESE_NOTEBOOK))  # Jupyter Server's name for the kernel's notebook
    monkeypatch.setenv("LANG", "C.UTF-8")
    cells.check("normalize", dict(reference_functions))
    assert capsys.readouterr().out.startswith("✓ normalize（10/10 分）：")


def test_a_notebook_s_name_and_its_metrics_names_reach_the_terminal_escaped():
    """A TA who checks a student's notebook runs its name and its metrics' names through their terminal: an
    escape sequence there set the title and colours (helper-86 4)."""
    import io

    from autograder.judge.checks import CHECKS
    from autograder.judge.evidence import skipped
    from autograder.selfcheck import SelfCheckReport, format_self_check
    from autograder.text import has_control
    from autograder.trainer.fast_path import epoch_progress

    name = "\x1b]0;TITLE\x07\x1b[31mred\u202e.ipynb"
    training = next(check for check in CHECKS if check.id == "training")
    shown = format_self_check(SelfCheckReport(name, [skipped(training, "the quick check passed")], 20, []))
    assert "TITLE" in shown and not has_control(shown.replace("\n", "")), shown
    out = io.StringIO()
    progress = epoch_progress(out)
    progress.params, progress.epochs = {"epochs": 1}, 1
    progress.on_epoch_begin(0)
    progress.on_epoch_end(0, {"\x1b[2Jloss": 0.5})
    assert "loss 0.5000" in out.getvalue() and not has_control(out.getvalue().rstrip("\n"))


def test_nbgrader_s_checksum_is_computed_as_nbgrader_does_on_every_cell_it_handed_out():
    import nbformat
    from nbgrader.utils import compute_checksum

    from autograder.submission.lint import handed_out_unchanged

    for release in STUDENT_NOTEBOOK.parent.parent.glob("*/*.ipynb"):
        cells = [cell for cell in nbformat.read(release, as_version=4).cells if "checksum" in cell.metadata.get(
            "nbgrader", {})]
        assert len(cells) > 10 and all(handed_out_unchanged(cell) for cell in cells), release
        for cell in cells:
            cell.source += "\nX = 1"
            assert handed_out_unchanged(cell) is False and compute_checksum(cell) != cell.metadata.nbgrader.checksum


def test_a_set_up_cell_the_student_changed_is_named_in_the_self_check_which_grading_would_not_run(capsys, tmp_path):
    """A constant added to the locked set-up cell passed the self-check, which runs the notebook as it is, and
    failed grading, which runs the set-up as handed out; nothing said why (helper-86 2)."""
    import nbformat

    from autograder.cli import main

    nb = nbformat.read(SUBMISSIONS / "passes_all.ipynb", as_version=4)
    setup = next(cell for cell in nb.cells if "setup" in cell.metadata.get("tags", []))
    setup.source += "\nPIXEL_MAX = 255.0"
    nbformat.write(nb, tmp_path / "edited.ipynb")
    main(["check", str(tmp_path / "edited.ipynb")])
    out = capsys.readouterr().out
    assert f"cell {nb.cells.index(setup) + 1} is a set-up cell, handed out locked, and it was changed" in out, out
    main(["check", str(SUBMISSIONS / "passes_all.ipynb")])
    assert "handed out locked" not in capsys.readouterr().out


@pytest.mark.parametrize("edit", ["line endings", "a trailing newline", "points of 400 digits"])
def test_an_editor_s_line_endings_are_no_change_and_forged_points_cost_no_note(edit):
    """An editor's CRLF or final newline gave the note; points too large for a float lost every note (helper-87)."""
    import nbformat

    from autograder.submission.lint import handed_out_unchanged, notebook_notes

    nb = nbformat.read(SUBMISSIONS / "passes_all.ipynb", as_version=4)
    setup = next(cell for cell in nb.cells if "setup" in cell.metadata.get("tags", []))
    if edit == "line endings":
        setup.source = setup.source.replace("\n", "\r\n")
    elif edit == "a trailing newline":
        setup.source += "\n"
    else:
        setup.metadata.nbgrader.update(grade=True, points=10**400)
    assert handed_out_unchanged(setup) is (edit != "points of 400 digits")
    notes = notebook_notes(nb)
    assert any("handed out locked" in note for note in notes) is (edit == "points of 400 digits")
