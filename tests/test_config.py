"""The instructor's config file (autograder.toml): read, checked, shown by `autograder config`, applied to
the checks table in one place, agreeing with the notebooks' nbgrader points, and changing a real grade."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from autograder.assignment import EPOCHS, REPO_ROOT, SOURCE_NOTEBOOK, STUDENT_NOTEBOOK
from autograder.batch.store import digest
from autograder.cli import main
from autograder.config import CONFIG_NAME, Config, find_config, load_config, nbgrader_points
from autograder.errors import ConfigError
from autograder.judge.checks import CHECKS, checks_table, max_score
from autograder.judge.report import GradeReport
from autograder.judge.training_checks import MIN_TEST_ACCURACY
from autograder.limits import Limits

SAMPLE = REPO_ROOT / CONFIG_NAME


def write(folder: Path, text: str, name: str = CONFIG_NAME) -> Path:
    path = folder / name
    path.write_text(text)
    return path


def test_the_sample_file_holds_exactly_the_defaults():
    config = load_config(SAMPLE)
    assert config.pass_mark == MIN_TEST_ACCURACY == Config().pass_mark
    assert config.epochs == EPOCHS == Config().epochs
    assert config.points == {check.id: check.points for check in CHECKS}
    assert checks_table(config) == CHECKS and config.limits == Limits()


@pytest.mark.parametrize("notebook", [SOURCE_NOTEBOOK, STUDENT_NOTEBOOK], ids=["source", "student"])
def test_the_committed_notebooks_carry_the_default_config_s_points(notebook):
    assert nbgrader_points(notebook) == {check.id: check.points for check in checks_table(load_config(SAMPLE))}


def test_the_file_s_points_pass_mark_and_limits_are_what_grading_uses(tmp_path):
    config = load_config(write(tmp_path, "pass_mark = 0.9\n[points]\nnormalize = 30\n[limits]\nmemory_gib = 4\n"))
    table = {check.id: check for check in checks_table(config)}
    assert table["normalize"].points == 30 and table["split"].points == 10
    assert "0.9" in table["test_accuracy"].description
    assert config.limits.memory_bytes == 4 * 1024**3 and config.limits.cell_seconds == Limits().cell_seconds
    ungraded = GradeReport.ungraded("x.ipynb", "broken", table=checks_table(config))
    assert ungraded.max_score == max_score(CHECKS) + 20 == sum(c.max_points for c in ungraded.checks)


def test_a_stored_result_counts_only_for_the_same_points_pass_mark_epochs_and_language(tmp_path):
    notebook = write(tmp_path, "{}", "a.ipynb")
    assert digest(notebook, load_config(SAMPLE)) == digest(notebook)  # the defaults keep old results valid
    other = load_config(write(tmp_path, "[points]\nsplit = 11\n"))
    assert digest(notebook, other) != digest(notebook)
    assert digest(notebook, load_config(write(tmp_path, "pass_mark = 0.8\n"))) not in (digest(notebook),
                                                                                       digest(notebook, other))
    shorter = digest(notebook, load_config(write(tmp_path, "epochs = 2\n")))
    assert shorter not in (digest(notebook), digest(notebook, other))
    # Graded in the notebook's own language, then with --lang: the messages differ, so does the key.
    chinese = digest(notebook, Config().with_lang("zh_CN", "--lang"))
    assert chinese not in (digest(notebook), shorter) and chinese == digest(notebook, Config().with_lang("zh_CN", "x"))


def test_the_epochs_set_what_the_training_check_asks_for(tmp_path):
    config = load_config(write(tmp_path, "epochs = 12\n"))
    assert config.epochs == 12 and config.origin("epochs") == str(tmp_path / CONFIG_NAME)
    table = {check.id: check for check in checks_table(config)}
    assert table["training"].description.startswith("12 epochs")
    assert {check.id: check for check in CHECKS}["training"].description.startswith(f"{EPOCHS} epochs")


@pytest.mark.parametrize(
    ("text", "key", "problem"),
    [
        ("passmark = 0.9\n", "passmark", "unknown key"),
        ("pass_mark = 0\n", "pass_mark", "above 0 and at most 1"),
        ("pass_mark = 1.5\n", "pass_mark", "above 0 and at most 1"),
        ("pass_mark = '0.9'\n", "pass_mark", "must be a number"),
        ("epochs = 0\n", "epochs", "from 1 to 1000"),
        ("epochs = -3\n", "epochs", "from 1 to 1000"),
        ("epochs = 1001\n", "epochs", "from 1 to 1000"),
        ("epochs = 2.5\n", "epochs", "whole number"),
        ("epochs = true\n", "epochs", "whole number"),
        ("epochs = '30'\n", "epochs", "whole number"),
        ("[points]\nnormalize = -5\n", "points.normalize", "0 or more"),
        ("[points]\nnormalize = 2.5\n", "points.normalize", "whole number"),
        ("[points]\nnormalise = 5\n", "points.normalise", "no check has this id"),
        ("points = 5\n", "points", "must be a table"),
        ("[limits]\nmemory = 4\n", "limits.memory", "unknown limit"),
        ("[limits]\ncell_seconds = -1\n", "limits.cell_seconds", "above 0"),
        ("[limits]\nprocesses = 1.5\n", "limits.processes", "whole number"),
        ("[limits]\nmemory_gib = true\n", "limits.memory_gib", "must be a number"),
    ],
)
def test_a_bad_value_is_an_error_naming_the_file_and_the_key(tmp_path, capsys, text, key, problem):
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as raised:
        checks_table(load_config(path))
    assert raised.value.key == key and problem in str(raised.value) and str(path) in str(raised.value)
    assert main(["config", "--config", str(path)]) == ConfigError.exit_code == 2
    assert f"{path}: {key}: " in capsys.readouterr().err


def test_a_file_that_is_not_toml_or_missing_is_an_error(tmp_path):
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(write(tmp_path, "pass_mark = = 1\n"))
    with pytest.raises(ConfigError, match="no such file"):
        find_config(tmp_path / "nowhere.toml")


def test_the_file_is_found_in_the_current_folder_else_beside_the_course_s_nbgrader_config(tmp_path):
    course = tmp_path / "course"
    (course / "submitted" / "ann").mkdir(parents=True)
    (course / "nbgrader_config.py").write_text("")
    assert find_config(start=course / "submitted" / "ann") is None
    beside = write(course, "")
    assert find_config(start=course / "submitted" / "ann") == beside
    here = write(course / "submitted", "")
    assert find_config(start=course / "submitted") == here
    assert find_config(tmp_path / "course" / CONFIG_NAME, start=course / "submitted") == beside


def test_autograder_config_shows_each_value_with_where_it_came_from(tmp_path, capsys):
    path = write(tmp_path, "pass_mark = 0.9\n[points]\ncompile = 25\n[limits]\nmemory_gib = 6\ncell_seconds = 50\n")
    assert main(["config", "--config", str(path), "--memory-limit", "3"]) == 0
    lines = {line.split(" = ")[0]: line for line in capsys.readouterr().out.splitlines() if " = " in line}
    assert lines["pass_mark"].endswith(f"# {path}") and "0.9" in lines["pass_mark"]
    assert lines["epochs"].split("#")[0].split(" = ")[1].strip() == str(EPOCHS)
    assert lines["epochs"].endswith("# default")
    assert main(["config", "--config", str(write(tmp_path, "epochs = 7\n"))]) == 0
    assert "epochs = 7" in capsys.readouterr().out
    assert "25" in lines["compile"] and lines["compile"].endswith(f"# {path}")
    assert lines["split"].endswith("# default")
    assert "3" in lines["memory_gib"] and lines["memory_gib"].endswith("# --memory-limit")
    assert "50" in lines["cell_seconds"] and lines["cell_seconds"].endswith(f"# {path}")


def test_a_limit_option_is_checked_too(capsys):
    assert main(["config", "--config", str(SAMPLE), "--time-limit", "-3"]) == 2
    assert "--time-limit: limits.submission_seconds" in capsys.readouterr().err


def test_grading_with_other_points_gives_their_max_score_and_warns(tmp_path, real_data_dir):
    """A real run: the stubs, unsandboxed (cheap: nothing trains), with normalize worth 30 and another pass mark."""
    path = write(tmp_path, "pass_mark = 0.625\n[points]\nnormalize = 30\n")
    result = subprocess.run(
        [sys.executable, "-m", "autograder", "grade", str(STUDENT_NOTEBOOK), "--unsandboxed", "--config", str(path),
         "--data-dir", str(real_data_dir), "--results", str(tmp_path / "results"), "--json", str(tmp_path / "r.json"),
         "--class-report", str(tmp_path / "class.html")],
        capture_output=True, text=True, cwd=tmp_path, timeout=600,
    )
    assert result.returncode == 0, result.stderr
    report = json.loads((tmp_path / "r.json").read_text())[0]
    assert report["max_score"] == max_score(CHECKS) + 20 and report["score"] == 0
    assert {c["id"]: c["max_points"] for c in report["checks"]}["normalize"] == 30
    assert "normalize 30 (notebook: 10)" in result.stderr and "make assignment" in result.stderr
    assert "pass mark 0.625" in (tmp_path / "class.html").read_text()  # the class overview's, of this config


def grade_with(tmp_path, real_data_dir, config_text: str, *extra: str):
    path = write(tmp_path, config_text)
    result = subprocess.run(
        [sys.executable, "-m", "autograder", "grade", str(SOURCE_NOTEBOOK), "--config", str(path), *extra,
         "--data-dir", str(real_data_dir), "--results", str(tmp_path / "results"), "--json", str(tmp_path / "r.json")],
        capture_output=True, text=True, cwd=tmp_path, timeout=600,
    )
    assert result.returncode == 0, result.stderr
    return json.loads((tmp_path / "r.json").read_text())[0], result


@pytest.mark.slow  # seconds of training, but TensorFlow's start and the probes take a minute on a busy machine
@pytest.mark.parametrize("sandboxed", [True, False], ids=["sandboxed", "unsandboxed"])
def test_a_correct_submission_trained_for_the_configured_epochs_gets_full_marks(tmp_path, real_data_dir, sandboxed):
    """epochs = 2 and a pass mark two epochs reach: the solution trains for 2 epochs (seconds), and the
    training check asks for 2; with the default 30 it would be told it trained too few."""
    report, _ = grade_with(tmp_path, real_data_dir, "epochs = 2\npass_mark = 0.5\n",
                           *([] if sandboxed else ["--unsandboxed"]))
    assert report["error"] is None, report
    checks = {c["id"]: c for c in report["checks"]}
    assert report["score"] == report["max_score"] == max_score(CHECKS), checks
    assert checks["training"]["message"].startswith("2 epochs")


def test_epochs_0_is_a_clear_error_before_anything_is_graded(tmp_path, real_data_dir):
    path = write(tmp_path, "epochs = 0\n")
    result = subprocess.run(
        [sys.executable, "-m", "autograder", "grade", str(SOURCE_NOTEBOOK), "--config", str(path),
         "--data-dir", str(real_data_dir), "--json", str(tmp_path / "r.json")],
        capture_output=True, text=True, cwd=tmp_path, timeout=600,
    )
    assert result.returncode == ConfigError.exit_code
    assert f"{path}: epochs: must be a whole number from 1 to 1000" in result.stderr
    assert not (tmp_path / "r.json").exists()


def test_the_notebook_cells_train_for_the_epochs_of_the_config_beside_the_notebook(tmp_path, monkeypatch, capsys):
    """The training check's cell asks train_model for the epochs of the autograder.toml in the notebook's
    folder (the kernel's current folder), else for the default; nothing trains here."""
    from types import SimpleNamespace

    import autograder.nbgrader_cells as cells
    import autograder.sandbox.probe as probe
    from autograder.trainer.service import Trainer

    asked = []

    class Asked(Exception):
        pass

    def collect(functions, inputs, *, epochs=EPOCHS, **options):
        asked.append(epochs)
        raise Asked

    monkeypatch.setattr(probe, "collect", collect)
    monkeypatch.setattr(Trainer, "from_images", classmethod(lambda cls, *args, **kwargs: None))
    monkeypatch.setattr(cells, "_reference", lambda: (SimpleNamespace(train_images=None, train_labels=None,
                                                                      test_images=None), None))
    (tmp_path / "course").mkdir()
    monkeypatch.chdir(tmp_path / "course")
    with pytest.raises(Asked):
        cells._trained({})
    write(tmp_path / "course", "epochs = 4\n")
    with pytest.raises(Asked):
        cells._trained({})
    assert asked == [EPOCHS, 4]
    out = capsys.readouterr().out
    assert f"Training your model for {EPOCHS} epochs" in out and "Training your model for 4 epochs" in out


def test_the_self_check_hint_names_the_configured_epochs(tmp_path, capsys):
    """A finished notebook beside an autograder.toml of 3 epochs: the quick check passes, and the full
    training it points to is of 3 epochs, as grading would ask."""
    notebook = tmp_path / "my work.ipynb"
    notebook.write_bytes((REPO_ROOT / "tests" / "submissions" / "passes_all.ipynb").read_bytes())
    write(tmp_path, "epochs = 3\n")
    main(["check", str(notebook)])
    out = capsys.readouterr().out
    assert "the quick check passed" in out and "to train for 3 epochs" in out, out


@pytest.mark.slow
def test_the_full_self_check_trains_for_the_configured_epochs(tmp_path, capsys):
    notebook = tmp_path / "my work.ipynb"
    notebook.write_bytes((REPO_ROOT / "tests" / "submissions" / "passes_all.ipynb").read_bytes())
    write(tmp_path, "epochs = 2\n")
    main(["check", "--full", str(notebook)])
    out = capsys.readouterr().out
    assert "PASS  training" in out and "2 epochs with loss" in out, out
    assert "epoch  2/2" in out and f"/{EPOCHS} " not in out  # a line per epoch, of 2 (the short call's are of 3)


def judged_training(config_epochs: int, trained: int, short: int):
    """The training check, with the config's epochs, on the trainer's record of a short call of ``short``
    epochs (the kit's small model, arrays swapped) and a training of ``trained`` epochs."""
    from autograder.judge.evidence import Evidence, run_check
    from autograder.judge.training_checks import probe_model_signature
    from autograder.sandbox.artifacts import Artifacts
    from autograder.trainer.records import FitRecord, TrainingRecord

    def call(epochs, x, y, validation, architecture):
        history = {key: [0.5] * epochs for key in ("loss", "accuracy", "val_loss", "val_accuracy")}
        return FitRecord(trained=True, epochs_run=epochs, history=history, x=x, y=y, validation=validation,
                         architecture=architecture)

    calls = [call(short, "X_valid", "y_valid", ["X_train", "y_train"], probe_model_signature()),
             call(trained, "X_train", "y_train", ["X_valid", "y_valid"], "the student's network")]
    artifacts = Artifacts(values={"training": {"returned": "History", "returned_the_history": True, "fit_calls": 2,
                                               "epochs_probe_calls": 1, "epochs_probe_error": None}})
    table = {check.id: check for check in checks_table(Config(epochs=config_epochs))}
    return run_check(table["training"], Evidence(artifacts, None, TrainingRecord(calls=calls), epochs=config_epochs))


def test_the_training_check_expects_the_configured_epochs():
    passed = judged_training(12, trained=12, short=2)
    assert passed.passed and passed.message.startswith("12 epochs"), passed.message
    thirty = judged_training(12, trained=EPOCHS, short=2)
    assert not thirty.passed and f"trained for {EPOCHS} epochs; the assignment asks for 12" in thirty.message
    # With 2 epochs configured the short call asks for 3, so a train_model that writes epochs=2 is still found out.
    assert judged_training(2, trained=2, short=3).passed
    hard_coded = judged_training(2, trained=2, short=2)
    assert not hard_coded.passed and "called with epochs=3 and other arrays, it trained for 2" in hard_coded.message
