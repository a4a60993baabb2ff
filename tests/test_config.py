"""The instructor's config file (autograder.toml): read, checked, shown by `autograder config`, applied to
the checks table in one place, agreeing with the notebooks' nbgrader points, and changing a real grade."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from autograder.assignment import REPO_ROOT, SOURCE_NOTEBOOK, STUDENT_NOTEBOOK
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


def test_a_stored_result_counts_only_for_the_same_points_and_pass_mark(tmp_path):
    notebook = write(tmp_path, "{}", "a.ipynb")
    assert digest(notebook, load_config(SAMPLE)) == digest(notebook)  # the defaults keep old results valid
    other = load_config(write(tmp_path, "[points]\nsplit = 11\n"))
    assert digest(notebook, other) != digest(notebook)
    assert digest(notebook, load_config(write(tmp_path, "pass_mark = 0.8\n"))) not in (digest(notebook),
                                                                                       digest(notebook, other))


@pytest.mark.parametrize(
    ("text", "key", "problem"),
    [
        ("passmark = 0.9\n", "passmark", "unknown key"),
        ("pass_mark = 0\n", "pass_mark", "above 0 and at most 1"),
        ("pass_mark = 1.5\n", "pass_mark", "above 0 and at most 1"),
        ("pass_mark = '0.9'\n", "pass_mark", "must be a number"),
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
    assert "25" in lines["compile"] and lines["compile"].endswith(f"# {path}")
    assert lines["split"].endswith("# default")
    assert "3" in lines["memory_gib"] and lines["memory_gib"].endswith("# --memory-limit")
    assert "50" in lines["cell_seconds"] and lines["cell_seconds"].endswith(f"# {path}")


def test_a_limit_option_is_checked_too(capsys):
    assert main(["config", "--config", str(SAMPLE), "--time-limit", "-3"]) == 2
    assert "--time-limit: limits.submission_seconds" in capsys.readouterr().err


def test_grading_with_other_points_gives_their_max_score_and_warns(tmp_path, real_data_dir):
    """A real run: the stubs, unsandboxed (cheap: nothing trains), with normalize worth 30."""
    path = write(tmp_path, "[points]\nnormalize = 30\n")
    result = subprocess.run(
        [sys.executable, "-m", "autograder", "grade", str(STUDENT_NOTEBOOK), "--unsandboxed", "--config", str(path),
         "--data-dir", str(real_data_dir), "--results", str(tmp_path / "results"), "--json", str(tmp_path / "r.json")],
        capture_output=True, text=True, cwd=tmp_path, timeout=600,
    )
    assert result.returncode == 0, result.stderr
    report = json.loads((tmp_path / "r.json").read_text())[0]
    assert report["max_score"] == max_score(CHECKS) + 20 and report["score"] == 0
    assert {c["id"]: c["max_points"] for c in report["checks"]}["normalize"] == 30
    assert "normalize 30 (notebook: 10)" in result.stderr and "make assignment" in result.stderr
