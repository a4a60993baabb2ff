"""`autograder gradescope-package`: the zip Gradescope runs, tried on a simulated /autograder tree.

`run_autograder` runs as Gradescope runs it (bash, in the unpacked zip), with the kit already installed
here (`AUTOGRADER_PYTHON`: this Python) and its root under tmp_path (`AUTOGRADER_ROOT`); `setup.sh` is
only checked (it installs from the internet, on Gradescope's machine).
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
import zipfile
from pathlib import Path

import nbformat
import pytest

from autograder.assignment import FUNCTIONS, NOTEBOOK_NAME, SOURCE_NOTEBOOK, STUDENT_NOTEBOOK
from autograder.cli import main
from autograder.judge.checks import CHECKS
from autograder.submission.cells import is_setup_cell, is_solution_cell

SUBMISSIONS = Path(__file__).parent / "submissions"
REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def package(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("package") / "autograder.zip"
    assert main(["gradescope-package", str(out)]) == 0
    return out


def autograder_tree(tmp_path: Path, package: Path, uploads: dict[str, Path | bytes]) -> Path:
    """/autograder as Gradescope lays it out: the zip in source/, the student's upload in submission/."""
    root = tmp_path / "autograder"
    with zipfile.ZipFile(package) as archive:
        archive.extractall(root / "source")
        for info in archive.infolist():  # extractall drops the modes; Gradescope's unzip keeps them
            os.chmod(root / "source" / info.filename, (info.external_attr >> 16) & 0o777 or 0o644)
    (root / "submission").mkdir()
    for name, content in uploads.items():
        target = root / "submission" / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, Path):
            shutil.copy(content, target)
        else:
            target.write_bytes(content)
    return root


def run_autograder(root: Path, python: str = sys.executable) -> tuple[dict, str]:
    env = {**os.environ, "AUTOGRADER_ROOT": str(root), "AUTOGRADER_PYTHON": python,
           "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    run = subprocess.run(["bash", str(root / "source" / "run_autograder")], env=env, capture_output=True, text=True,
                         timeout=900, cwd=root)
    assert run.returncode == 0, run.stderr
    text = (root / "results" / "results.json").read_text()
    return json.loads(text, parse_constant=lambda name: pytest.fail(f"not strict JSON: {name}")), run.stdout


def assert_gradescope_shape(results: dict) -> None:
    assert results["stdout_visibility"] == "hidden"  # the log names the hidden check's result
    assert [t["name"] for t in results["tests"]] == [c.id for c in CHECKS]
    assert sum(t["max_score"] for t in results["tests"]) == results["max_score"] == 100
    assert sum(t["score"] for t in results["tests"]) == results["score"]
    for test, check in zip(results["tests"], CHECKS):
        assert test["visibility"] == ("after_published" if check.hidden else "visible")
        assert test["output"]


def test_the_zip_holds_the_two_scripts_and_the_kit_without_solutions_or_tests(package, tmp_path):
    with zipfile.ZipFile(package) as archive:
        names = archive.namelist()
        texts = {name: archive.read(name).decode("utf-8", "replace") for name in names}
        modes = {info.filename: (info.external_attr >> 16) & 0o777 for info in archive.infolist()}
    assert {"setup.sh", "run_autograder"} <= set(names)  # in the zip's root, where Gradescope looks
    assert modes["setup.sh"] & 0o111 and modes["run_autograder"] & 0o111
    assert "kit/pyproject.toml" in names
    modules = {path.relative_to(REPO).as_posix() for path in (REPO / "autograder").rglob("*.py")}
    assert {f"kit/{module}" for module in modules} <= set(names)
    assert not [name for name in names if name.startswith("kit/tests/") or "__pycache__" in name]

    # No solution: the solutions notebook in the zip is the source's set-up cells, nothing else.
    source = nbformat.read(SOURCE_NOTEBOOK, as_version=4)
    packed = nbformat.reads(texts[f"kit/{SOURCE_NOTEBOOK.relative_to(REPO).as_posix()}"], as_version=4)
    assert [c.source for c in packed.cells] == [c.source for c in source.cells if is_setup_cell(c)]
    assert not [c for c in packed.cells if is_solution_cell(c)]
    solutions = [c.source for c in source.cells if is_solution_cell(c) and not is_setup_cell(c)]
    assert len(solutions) >= len(FUNCTIONS)
    leaked = [(name, s[:40]) for name, text in texts.items() for s in solutions if s.strip() and s.strip() in text]
    assert not leaked

    for script in ("setup.sh", "run_autograder"):
        (tmp_path / script).write_text(texts[script])
        check = subprocess.run(["bash", "-n", str(tmp_path / script)], capture_output=True, text=True)
        assert check.returncode == 0, check.stderr
    setup = texts["setup.sh"]
    assert "pip\" install -e \"$SOURCE/kit[grade]\"" in setup  # the kit, from the zip, editable
    assert "load_fashion_mnist()" in setup  # the data, fetched and checked once, on Gradescope's machine


def test_unfilled_notebook_gets_zero_with_every_check_saying_why(package, tmp_path):
    root = autograder_tree(tmp_path, package, {NOTEBOOK_NAME: STUDENT_NOTEBOOK})
    results, log = run_autograder(root)
    assert_gradescope_shape(results)
    assert results["score"] == 0 and results["output"] == ""
    unsaid = [test["output"] for test in results["tests"] if "NotImplementedError" not in test["output"]]
    assert not unsaid
    assert "leaderboard" not in results  # nothing trained, nothing measured
    assert "normalize" in log  # the grader's log for the staff


def test_broken_notebook_gets_zero_and_the_reason(package, tmp_path):
    root = autograder_tree(tmp_path, package, {NOTEBOOK_NAME: SUBMISSIONS / "not_json.ipynb"})
    results, _ = run_autograder(root)
    assert_gradescope_shape(results)
    assert results["score"] == 0 and "not valid JSON" in results["output"]


@pytest.mark.parametrize(
    "uploads, says",
    [
        ({}, "holds no notebook"),
        ({"notes.txt": b"my notes"}, "holds no notebook"),
        ({"a.ipynb": SUBMISSIONS / "not_json.ipynb", "b/c.ipynb": SUBMISSIONS / "not_json.ipynb"}, "several notebooks"),
    ],
)
def test_no_notebook_or_several_get_zero_and_what_to_upload(package, tmp_path, uploads, says):
    results, _ = run_autograder(autograder_tree(tmp_path, package, uploads))
    assert_gradescope_shape(results)
    assert results["score"] == 0 and says in results["output"] and NOTEBOOK_NAME in results["output"]


def test_an_upload_with_no_notebook_is_told_so_in_the_locale_s_language(tmp_path, monkeypatch):
    """No notebook says which language to speak: the locale's (a course's setup may set LANG), else English."""
    from autograder.reports.gradescope_package import grade_upload

    (tmp_path / "submission").mkdir()
    for variable in ("LANGUAGE", "LC_ALL", "LC_MESSAGES"):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("LANG", "zh_CN.UTF-8")
    chinese = grade_upload(tmp_path)
    monkeypatch.setenv("LANG", "C.UTF-8")
    english = grade_upload(tmp_path)
    assert f"你的提交中没有笔记本：请上传 {NOTEBOOK_NAME}" in chinese["output"]
    assert {test["output"] for test in chinese["tests"]} == {f"未评分：你的提交中没有笔记本：请上传 {NOTEBOOK_NAME}"}
    assert f"your submission holds no notebook: upload {NOTEBOOK_NAME}" in english["output"]


def test_the_assignments_notebook_is_chosen_beside_others(package, tmp_path):
    uploads = {NOTEBOOK_NAME: SUBMISSIONS / "not_json.ipynb", "scratch/draft.ipynb": STUDENT_NOTEBOOK,
               ".ipynb_checkpoints/fashion_mnist_classifier-checkpoint.ipynb": STUDENT_NOTEBOOK}
    results, _ = run_autograder(autograder_tree(tmp_path, package, uploads))
    assert "not valid JSON" in results["output"]  # the one named as the assignment's, not the draft


def test_a_grader_that_cannot_start_still_writes_a_result(package, tmp_path):
    root = autograder_tree(tmp_path, package, {NOTEBOOK_NAME: STUDENT_NOTEBOOK})
    results, _ = run_autograder(root, python=str(tmp_path / "no-python-here"))
    assert results["score"] == 0 and "not a mistake in your work" in results["output"]
    assert results["stdout_visibility"] == "hidden"


def test_a_failing_grader_gives_zero_and_says_it_is_not_the_students_fault(package, tmp_path, monkeypatch):
    import autograder.batch.local
    from autograder.reports.gradescope_package import run_autograder as run_in_process

    def broken(*args, **kwargs):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(autograder.batch.local, "grade_notebooks", broken)
    root = autograder_tree(tmp_path, package, {NOTEBOOK_NAME: STUDENT_NOTEBOOK})
    (root / "results").mkdir()
    assert run_in_process(root) == 0
    results = json.loads((root / "results" / "results.json").read_text())
    assert_gradescope_shape(results)
    assert results["score"] == 0 and "not a mistake in your notebook" in results["output"]
    assert "disk on fire" not in results["output"]  # the grader's insides are for the staff's log


@pytest.mark.slow
def test_a_correct_notebook_gets_full_marks_and_its_accuracy_on_the_leaderboard(package, tmp_path):
    root = autograder_tree(tmp_path, package, {NOTEBOOK_NAME: SUBMISSIONS / "passes_all.ipynb"})
    results, _ = run_autograder(root)
    assert_gradescope_shape(results)
    assert results["score"] == 100 and all(t["status"] == "passed" for t in results["tests"])
    [entry] = results["leaderboard"]
    assert entry["name"] == "Test accuracy" and entry["order"] == "desc" and 0.85 <= entry["value"] <= 1
    assert stat.S_ISREG(os.stat(root / "results" / "results.json").st_mode)


def test_the_leaderboard_shows_the_accuracy_the_grader_measured_and_nothing_else():
    from autograder.judge.report import GradeReport
    from autograder.reports.formats import gradescope_results

    report = GradeReport.ungraded("x.ipynb", "whatever")
    assert "leaderboard" not in gradescope_results(report)
    report.confusion = [[90 if i == j else 1 for j in range(10)] for i in range(10)]  # 900 right of 990
    assert gradescope_results(report)["leaderboard"] == [{"name": "Test accuracy", "value": 0.9091, "order": "desc"}]
    for broken in ([[float("nan")] * 10] * 10, [[0] * 10] * 10, [[1, 2]], "not a table"):
        report.confusion = broken
        assert "leaderboard" not in gradescope_results(report)


def test_gradescope_results_speak_the_report_s_language_and_keep_their_keys_and_test_names():
    from autograder.i18n import speaking
    from autograder.judge.report import GradeReport
    from autograder.reports.formats import gradescope_results

    english = gradescope_results(GradeReport.ungraded("x.ipynb", "the notebook is not valid JSON"))
    with speaking("zh_CN"):
        report = GradeReport.ungraded("x.ipynb", "the notebook is not valid JSON")
    chinese = gradescope_results(report)
    assert english["output"] == "Could not be graded: the notebook is not valid JSON"
    assert chinese["output"] == "无法评分：the notebook is not valid JSON"
    assert set(chinese) == set(english) and [set(t) for t in chinese["tests"]] == [set(t) for t in english["tests"]]
    assert [t["name"] for t in chinese["tests"]] == [c.id for c in CHECKS]  # ids, as in every language
    assert [t["status"] for t in chinese["tests"]] == ["failed"] * len(CHECKS)
    assert {t["output"] for t in chinese["tests"]} == {"未评分：the notebook is not valid JSON"}


def test_an_upload_of_many_notebooks_is_named_in_a_few_words(tmp_path):
    """The reason is every check's message: 2,000 notebooks of long names made it megabytes (helper-80)."""
    from autograder.reports.gradescope_package import SubmissionProblem, find_notebook

    folder = tmp_path / "submission"
    for index in range(2000):
        (folder / ("d" * 200)).mkdir(parents=True, exist_ok=True)
        (folder / ("d" * 200) / f"{index:04d}{'n' * 200}.ipynb").write_text("{}")
    with pytest.raises(SubmissionProblem) as refused:
        find_notebook(folder)
    message = str(refused.value)
    assert "several notebooks" in message and "(+1995)" in message and len(message) < 800, len(message)


def test_gradescope_shows_a_student_s_words_as_plain_text():
    """Every other output escapes a student's controls; results.json carried them raw, to be read in Gradescope's
    default format, where HTML is markup (helper-86 3)."""
    from autograder.judge.evidence import CheckResult
    from autograder.judge.report import GradeReport
    from autograder.reports.formats import gradescope_results
    from autograder.text import has_control

    hostile = "\x1b]52;c;cm0gLXJm\x07 \u202eevil <script>alert(1)</script> <img src=x onerror=alert(1)>"
    checks = [CheckResult(c.id, 0, c.points, False, hostile) for c in CHECKS]
    results = gradescope_results(GradeReport("x.ipynb", 0, 100, None, checks))
    ungraded = gradescope_results(GradeReport.ungraded("x.ipynb", hostile))
    assert results["output_format"] == results["test_output_format"] == "text"
    for output in [ungraded["output"], *(test["output"] for test in results["tests"] + ungraded["tests"])]:
        assert not has_control(output) and "<script>" in output, output


def test_an_upload_nested_a_thousand_deep_is_searched_without_recursion(tmp_path):
    from autograder.reports.gradescope_package import find_notebook

    levels = [tmp_path / "submission"]
    levels[0].mkdir()
    for _ in range(1200):  # one level at a time: os.makedirs recurses, and so does shutil.rmtree
        levels.append(levels[-1] / "d")
        levels[-1].mkdir()
    (levels[-1] / "mine.ipynb").write_text("{}")
    try:
        assert find_notebook(levels[0]) == levels[-1] / "mine.ipynb"
    finally:
        (levels[-1] / "mine.ipynb").unlink()
        for level in reversed(levels[1:]):
            level.rmdir()
