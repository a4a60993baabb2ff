"""What a submission folder holds is read the way the grader reads any claim: a link is no
notebook, a name cannot break the batch, and the trainer of a submission is never killed twice."""

from __future__ import annotations

import glob
import json
import os
import shutil
import signal
import sys
from pathlib import Path

import pytest

from autograder.assignment import ASSIGNMENT_ID
from autograder.batch.local import expand_paths
from autograder.batch.store import result_file, run_settings, store_report, stored_report
from autograder.config import Config
from autograder.errors import NotebookError
from autograder.judge.report import GradeReport
from autograder.reports.text import format_logged
from autograder.submission.notebook import read_notebook, read_submitted_bytes

SUBMISSIONS = Path(__file__).parent / "submissions"
SOLUTION = Path(__file__).resolve().parent.parent / "solutions" / "fashion_mnist" / "fashion_mnist_classifier.ipynb"


def test_a_submitted_link_to_the_solution_is_no_notebook(tmp_path):
    folder = tmp_path / "submitted" / "eve" / "fashion_mnist"
    folder.mkdir(parents=True)
    (folder / "fashion_mnist_classifier.ipynb").symlink_to(SOLUTION)
    assert expand_paths([tmp_path / "submitted"]) == []  # a folder's links are not its notebooks
    with pytest.raises(NotebookError, match="link"):
        read_notebook(folder / "fashion_mnist_classifier.ipynb")  # nor is one named on the command line


STUDENT_UID = 54321  # a user other than the grader's, as a student on a shared machine is


def test_a_student_s_folder_swapped_for_a_link_to_the_solution_is_not_read_through(tmp_path):
    """Where students can change the folders graded (graded in their homes, or before a batch reads
    their notebook), a folder of theirs swapped for a link reaches the solution under their name; the
    notebooks named on the command line went through the shell's expansion of the link, and a batch
    reads each notebook only when its turn comes."""
    submitted = tmp_path / "submitted"
    eve = submitted / "eve"
    eve.mkdir(parents=True)
    os.chown(eve, STUDENT_UID, STUDENT_UID)  # eve's own folder
    (eve / "fashion_mnist").symlink_to(SOLUTION.parent)
    os.lchown(eve / "fashion_mnist", STUDENT_UID, STUDENT_UID)
    with pytest.raises(NotebookError, match="link"):
        read_notebook(eve / "fashion_mnist" / SOLUTION.name)
    with pytest.raises(NotebookError, match="link"):
        read_submitted_bytes(eve / "fashion_mnist" / SOLUTION.name)
    # A link of the grader's own, in a folder only the grader can change, is the instructor's layout.
    course = tmp_path / "course"
    course.symlink_to(SUBMISSIONS)
    assert len(read_notebook(course / "passes_all.ipynb").cells) > 0
    # ...but not in a folder a student can write: the student could swap it for one of theirs.
    os.chmod(eve, 0o777)
    (eve / "lesson").symlink_to(SUBMISSIONS)
    with pytest.raises(NotebookError, match="link"):
        read_notebook(eve / "lesson" / "passes_all.ipynb")


def test_submissions_collected_as_hard_links_are_read_and_a_folder_read_leaves_no_descriptor_open(tmp_path):
    """`cp -al` or `rsync --link-dest` collect students' files as hard links into the instructor's
    folders: those are the students' notebooks (a link to a file one cannot write is the kernel's to
    refuse, fs.protected_hardlinks)."""
    own = tmp_path / "home" / "eve" / "own.ipynb"
    own.parent.mkdir(parents=True)
    own.write_bytes((SUBMISSIONS / "passes_all.ipynb").read_bytes())
    os.chown(own, STUDENT_UID, STUDENT_UID)
    collected = tmp_path / "submitted" / "eve" / "fashion_mnist" / "own.ipynb"
    collected.parent.mkdir(parents=True)
    os.link(own, collected)
    assert read_notebook(collected).cells
    before = len(os.listdir("/proc/self/fd"))
    for _ in range(5):
        with pytest.raises(NotebookError, match="is a folder"):
            read_notebook(collected.parent)
    assert len(os.listdir("/proc/self/fd")) == before


def test_where_the_kernel_lets_anyone_hard_link_another_user_s_file_in_a_student_s_folder_is_refused(
        tmp_path, monkeypatch):
    from autograder.submission import paths

    monkeypatch.setattr(paths, "_hardlinks_protected", lambda: False)  # fs.protected_hardlinks=0
    eve = tmp_path / "submitted" / "eve" / "fashion_mnist"
    eve.mkdir(parents=True)
    os.chown(eve, STUDENT_UID, STUDENT_UID)
    solution = tmp_path / "solution.ipynb"
    solution.write_bytes(SOLUTION.read_bytes())  # the instructor's (root's) file
    os.link(solution, eve / SOLUTION.name)
    with pytest.raises(NotebookError, match="another user's file linked into this folder"):
        read_notebook(eve / SOLUTION.name)


def test_dot_dot_after_a_folder_moved_mid_walk_is_refused(tmp_path, monkeypatch):
    """`sub/../x.ipynb`: once the walk holds `sub`, a student who can write its parent moves it (into
    /tmp, say); `..` would then lead where the student chose."""
    eve = tmp_path / "submitted" / "eve"
    (eve / "sub").mkdir(parents=True)
    (eve / "x.ipynb").write_bytes((SUBMISSIONS / "passes_all.ipynb").read_bytes())
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "x.ipynb").write_bytes(SOLUTION.read_bytes())
    real_open = os.open

    def moved_once_entered(name, flags, *args, **kwargs):
        opened = real_open(name, flags, *args, **kwargs)
        if name == "sub":
            os.rename(eve / "sub", elsewhere / "sub")
        return opened

    monkeypatch.setattr(os, "open", moved_once_entered)
    with pytest.raises(NotebookError, match="link"):
        read_notebook(eve / "sub" / ".." / "x.ipynb")


def test_a_folder_swapped_for_a_link_while_the_grader_walks_is_refused_as_a_link(tmp_path, monkeypatch):
    eve = tmp_path / "submitted" / "eve"
    eve.mkdir(parents=True)
    os.chown(eve, STUDENT_UID, STUDENT_UID)
    (eve / "fashion_mnist").symlink_to(SOLUTION.parent)
    os.lchown(eve / "fashion_mnist", STUDENT_UID, STUDENT_UID)
    real_stat, lied = os.stat, []

    def stat_before_the_swap(name, *args, **kwargs):  # what the walk saw an instant before the swap
        if name == "fashion_mnist" and not lied:
            lied.append(name)
            return real_stat(tmp_path)
        return real_stat(name, *args, **kwargs)

    monkeypatch.setattr(os, "stat", stat_before_the_swap)
    with pytest.raises(NotebookError, match="reached through a link"):
        read_notebook(eve / "fashion_mnist" / SOLUTION.name)


def test_dot_dot_in_a_path_goes_up_from_where_the_link_led_as_the_kernel_s_does(tmp_path):
    real = tmp_path / "real" / "inside"
    real.mkdir(parents=True)
    (real.parent / "x.ipynb").write_bytes((SUBMISSIONS / "passes_all.ipynb").read_bytes())
    (tmp_path / "course").symlink_to(real)  # the grader's own link
    assert read_notebook(tmp_path / "course" / ".." / "x.ipynb").cells


def test_a_cluster_reads_a_submission_as_the_grader_does_never_through_a_link(tmp_path, recording_cluster):
    from autograder.batch.cluster import grade_on_cluster
    from autograder.batch.progress import Progress

    link = tmp_path / "submitted" / "eve" / "fashion_mnist" / SOLUTION.name
    link.parent.mkdir(parents=True)
    link.symlink_to(SOLUTION)
    [report] = grade_on_cluster([link], "tcp://127.0.0.1:1", progress=Progress(1, None))
    assert recording_cluster == [] and report.score == 0 and "link" in report.error


def test_a_fifo_named_like_a_notebook_does_not_hang_the_grader(tmp_path):
    fifo = tmp_path / "fashion_mnist_classifier.ipynb"
    os.mkfifo(fifo)
    with pytest.raises(NotebookError, match="not a regular file"):
        read_notebook(fifo)


def test_the_results_store_reads_a_submission_as_the_grader_does_bounded_and_not_through_links(tmp_path):
    from autograder.batch.store import digest

    huge = tmp_path / "huge.ipynb"
    with open(huge, "wb") as file:
        file.truncate(64 * 2**30)  # sparse: 64 GiB that the store must not read into memory
    link = tmp_path / "link.ipynb"
    link.symlink_to(SOLUTION)
    solution_copy = tmp_path / "copy.ipynb"
    solution_copy.write_bytes(SOLUTION.read_bytes())
    assert digest(link) != digest(solution_copy)  # a link is no notebook: it names no content of its target
    assert digest(huge) != digest(tmp_path / "missing.ipynb")
    assert digest(solution_copy) == digest(solution_copy)


@pytest.mark.parametrize("stem", ["x" * 246, "caf\udcff"], ids=["name_too_long_for_a_result_file", "not_utf8"])
def test_any_file_name_gets_a_stored_result(tmp_path, stem):
    submitted = tmp_path / "submitted"
    submitted.mkdir()
    try:
        path = submitted / f"{stem}.ipynb"
        path.write_bytes((SUBMISSIONS / "unfilled_stubs.ipynb").read_bytes())
    except (OSError, UnicodeEncodeError):
        pytest.skip("this file system refuses the name itself")
    report = GradeReport.ungraded(path, "not graded in this test")
    store_report(tmp_path / "results", path, report)
    assert len(result_file(tmp_path / "results", path).name.encode()) <= 255
    assert stored_report(tmp_path / "results", path).score == report.score


def a_stored_result(tmp_path: Path) -> tuple[Path, Path, dict]:
    """A stubs notebook, its result stored: the notebook, the result's file and what it holds."""
    path = tmp_path / "submitted" / "mallory.ipynb"
    path.parent.mkdir()
    path.write_bytes((SUBMISSIONS / "unfilled_stubs.ipynb").read_bytes())
    store_report(tmp_path / "results", path, GradeReport.ungraded(path, "not graded in this test"))
    file = result_file(tmp_path / "results", path)
    return path, file, json.loads(file.read_text())


def test_a_stored_result_counts_only_for_the_kit_s_code_and_the_run_s_limits_and_isolation(tmp_path, monkeypatch):
    """A rerun from the same results folder handed back a score the kit no longer gives: after an upgrade
    whose judge closed a hole (100 where the kit now gives 90), and after timeouts on a busy machine, rerun
    with a longer time limit (0 again) (helper-75 F1, F2); a result graded under limits-only, by a
    properly sandboxed rerun; one in English, in a Chinese locale (helper-76 F2, F3)."""
    from autograder.batch import store
    from autograder.limits import Limits

    path, _file, _stored = a_stored_result(tmp_path)
    results, same = tmp_path / "results", store.run_settings(Limits(submission_seconds=900), "bwrap")
    store_report(results, path, GradeReport.ungraded(path, "not graded in this test"), settings=same)
    assert stored_report(results, path, settings=store.run_settings(isolation="bwrap")) is not None  # 900 is 900.0
    for other in (store.run_settings(Limits(submission_seconds=1800), "bwrap"), store.run_settings(),
                  store.run_settings(isolation="limits-only")):
        assert stored_report(results, path, settings=other) is None
    monkeypatch.setenv("LANGUAGE", "zh_CN")
    assert stored_report(results, path, settings=store.run_settings(isolation="bwrap")) is None
    chinese = Config().with_lang("zh_CN", "--lang")  # the language given: the locale's is never told
    in_a_chinese_locale = store.run_settings(config=chinese)
    monkeypatch.delenv("LANGUAGE")
    assert store.run_settings(config=chinese) == in_a_chinese_locale
    monkeypatch.setattr(store, "kit_code", lambda: "an upgraded kit")
    assert stored_report(results, path, settings=same) is None


def test_the_kit_s_code_digest_changes_with_any_file_of_the_kit_and_the_lesson(tmp_path, monkeypatch):
    from autograder.batch import store

    kit = tmp_path / "autograder"
    shutil.copytree(store.KIT, kit, ignore=shutil.ignore_patterns("__pycache__"))
    before = store.code_digest(kit)
    judge = kit / "judge" / "training_checks.py"
    judge.write_text(judge.read_text() + "\n# a fixed check\n")
    assert store.code_digest(kit) != before and store.code_digest(kit, "keras 4") != store.code_digest(kit)
    lesson = tmp_path / "lesson.ipynb"  # its set-up cells run in every sandbox (helper-76 F1)
    lesson.write_bytes(store.SOURCE_NOTEBOOK.read_bytes())
    monkeypatch.setattr(store, "SOURCE_NOTEBOOK", lesson)
    store.kit_code.cache_clear()
    try:
        before = store.kit_code()
        lesson.write_text(lesson.read_text().replace("import numpy as np", "import numpy as numpy_"))
        store.kit_code.cache_clear()
        assert store.kit_code() != before
    finally:
        store.kit_code.cache_clear()


@pytest.mark.parametrize("forge", ["score", "points", "max_points", "checks", "true_points", "float_score",
                                   "passed_at_zero", "error_with_points", "long_message", "usage_text"])
def test_a_stored_result_whose_points_the_table_never_gave_is_graded_again(tmp_path, forge):
    path, file, stored = a_stored_result(tmp_path)
    checks = stored["report"]["checks"]
    if forge == "score":  # where the sandbox cannot hide the results folder, a student's code can write it
        stored["report"]["score"] = 100
    elif forge == "points":
        checks[0]["points"] = checks[0]["max_points"] + 50
        stored["report"]["score"] = sum(c["points"] for c in checks)
    elif forge == "max_points":
        checks[0]["max_points"] = checks[0]["points"] = 100
        stored["report"]["score"] = stored["report"]["max_score"] = sum(c["points"] for c in checks)
    elif forge == "checks":
        checks.append({**checks[0], "id": "bonus", "points": 40, "max_points": 40})
        stored["report"]["score"] = 40
    elif forge == "true_points":  # a JSON true is a Python int: 1 point
        checks[1]["points"], stored["report"]["score"] = True, 1
    elif forge == "float_score":
        stored["report"]["score"] = 0.0
    elif forge == "passed_at_zero":
        checks[0]["passed"] = True
    elif forge == "error_with_points":
        checks[0]["points"], checks[0]["passed"] = checks[0]["max_points"], True
        stored["report"]["score"] = checks[0]["points"]
    elif forge == "long_message":
        checks[0]["message"] = "x" * 5_000_000
    else:  # stopped every rerun's batch where the log shows it
        stored["usage"] = {"seconds": "x"}
    file.write_text(json.dumps(stored))
    report = stored_report(tmp_path / "results", path)
    if forge == "usage_text":
        assert report is not None and report.usage == {} and format_logged(report)
    else:
        assert report is None


def test_a_stored_result_keeps_which_checks_were_still_to_do_or_skipped(tmp_path):
    from autograder.judge.checks import CHECKS
    from autograder.judge.evidence import CheckResult

    path = tmp_path / "submitted" / "ann.ipynb"
    path.parent.mkdir()
    path.write_bytes((SUBMISSIONS / "unfilled_stubs.ipynb").read_bytes())
    checks = [CheckResult(c.id, 0, c.points, False, "to do", not_done=True) for c in CHECKS[:3]]
    checks += [CheckResult(c.id, 0, c.points, False, "not run", skipped=True) for c in CHECKS[3:]]
    report = GradeReport(str(path), 0, sum(c.points for c in CHECKS), None, checks)
    store_report(tmp_path / "results", path, report)
    back = stored_report(tmp_path / "results", path)
    assert [(c.not_done, c.skipped) for c in back.checks] == [(c.not_done, c.skipped) for c in checks]


def test_a_report_the_log_cannot_show_stops_no_batch():
    import io

    from autograder.batch.progress import Progress

    out = io.StringIO()
    progress = Progress(2, out, show=lambda report: 1 / 0)
    progress.finished(GradeReport.ungraded("/course/a.ipynb", "not graded in this test"))
    assert "a.ipynb" in out.getvalue() and "ZeroDivisionError" in out.getvalue()


def test_a_trainer_reaped_is_never_killed_again(monkeypatch):
    from autograder.trainer.desk import TrainerProcess

    class Reaped:
        pid = 4242
        returncode = -9

    trainer = TrainerProcess.__new__(TrainerProcess)
    trainer.process = Reaped()
    killed = []
    monkeypatch.setattr(os, "killpg", lambda group, sig: killed.append((group, sig)))
    trainer.kill()  # its pid may already be another process group's
    assert killed == []
    Reaped.returncode = None
    trainer.kill()
    assert killed == [(4242, signal.SIGKILL)]


def test_a_trainer_s_stderr_closed_under_its_reader_ends_the_reader_quietly():
    """``close`` closes the trainer's stderr; a reader thread that had not yet seen its end then reads a
    closed file. That must end the thread, not raise in it (pytest turns it into a failed test)."""
    from autograder.trainer.desk import TrainerProcess

    class Closed:
        def read(self, size):
            raise ValueError("I/O operation on closed file")

    class Process:
        stderr = Closed()

    trainer = TrainerProcess.__new__(TrainerProcess)
    trainer.process, trainer.tail = Process(), bytearray(b"last words")
    trainer._keep_tail()
    assert trainer.tail == b"last words"


def test_the_nbgrader_gradebook_being_written_is_hidden_from_every_sandbox(tmp_path, monkeypatch):
    """Where the machine allows only covering known paths (no bubblewrap), the grader covers what
    it is told is private: the gradebook holds every student's grades."""
    from nbgrader.api import Gradebook

    import autograder.batch.local as local
    from autograder import cli

    seen = {}
    monkeypatch.setattr(local, "grade_notebooks", lambda paths, **options: seen.update(options) or [])
    database = tmp_path / "gradebook.db"
    monkeypatch.setenv("PATH", f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")  # alembic
    with Gradebook(f"sqlite:///{database}") as gradebook:  # as generate_assignment leaves it
        gradebook.add_assignment(ASSIGNMENT_ID)
    cli.main(["grade", str(tmp_path), "--nbgrader-db", f"sqlite:///{database}"])
    assert database in [Path(path) for path in seen["private"]]


def earning_without_training() -> str:
    """The reference solution with ``train_model`` left a stub: points without a 30-epoch training."""
    notebook = json.loads((SUBMISSIONS / "passes_all.ipynb").read_text())
    stubs = json.loads((SUBMISSIONS / "unfilled_stubs.ipynb").read_text())
    [index] = [i for i, cell in enumerate(notebook["cells"]) if "def train_model" in "".join(cell["source"])]
    notebook["cells"][index] = stubs["cells"][index]
    return json.dumps(notebook)


def test_a_notebook_swapped_while_it_is_graded_has_its_result_stored_for_the_bytes_graded(
        tmp_path, real_data_dir, monkeypatch):
    """A student who can write their submission while the batch grades it (graded where they can
    write, or a shared folder) hands one notebook to the grader and puts another back before the
    result is stored. The stored result is the graded bytes': a rerun grades what the file holds then,
    and never lends a grade to bytes that did not earn it."""
    import autograder.batch.steps
    from autograder.batch.local import grade_notebooks

    path = tmp_path / "submitted" / "mallory" / "fashion_mnist" / "fashion_mnist_classifier.ipynb"
    path.parent.mkdir(parents=True)
    path.write_text(earning_without_training())
    judge = autograder.batch.steps.judge

    def swapped_back_while_judged(*args, **kwargs):
        path.write_bytes((SUBMISSIONS / "unfilled_stubs.ipynb").read_bytes())
        return judge(*args, **kwargs)

    monkeypatch.setattr(autograder.batch.steps, "judge", swapped_back_while_judged)
    from autograder.batch.store import run_settings
    from autograder.sandbox.method import sandbox_method

    [report] = grade_notebooks([path], data_dir=real_data_dir, results=tmp_path / "results")
    assert report.score > 0 and not report.error
    settings = run_settings(isolation=sandbox_method())
    assert stored_report(tmp_path / "results", path, settings=settings) is None  # the stubs were never graded
    path.write_text(earning_without_training())
    assert stored_report(tmp_path / "results", path, settings=settings).score == report.score


def test_a_cluster_stores_each_result_for_the_bytes_it_sent(tmp_path, recording_cluster, monkeypatch):
    import distributed

    from autograder.batch.cluster import grade_on_cluster
    from autograder.batch.progress import Progress

    path = tmp_path / "submitted" / "mallory" / "fashion_mnist" / "fashion_mnist_classifier.ipynb"
    path.parent.mkdir(parents=True)
    path.write_text(earning_without_training())

    def swapped_back_while_graded(futures):
        path.write_bytes((SUBMISSIONS / "unfilled_stubs.ipynb").read_bytes())
        return iter(futures)

    monkeypatch.setattr(distributed, "as_completed", swapped_back_while_graded)
    grade_on_cluster([path], "tcp://127.0.0.1:1", results=tmp_path / "results", progress=Progress(1, None))
    [(_, _, sent)] = recording_cluster
    assert sent == earning_without_training().encode()
    from autograder.batch.cluster import worker_facts

    on_a_cluster = run_settings(isolation=f"workers: {worker_facts()}")
    assert stored_report(tmp_path / "results", path, settings=on_a_cluster) is None
    path.write_text(earning_without_training())
    assert stored_report(tmp_path / "results", path, settings=on_a_cluster) is not None


def test_a_cluster_with_no_worker_yet_stores_by_what_the_first_result_says(tmp_path, recording_cluster, monkeypatch):
    """An adaptive cluster starts with no worker to ask: the first result says what the workers grade
    with, and a rerun, which asks them, finds the results (helper-78)."""
    import distributed

    from autograder.batch.cluster import grade_on_cluster, worker_facts
    from autograder.batch.progress import Progress

    path = tmp_path / "submitted" / "mallory" / "fashion_mnist" / "fashion_mnist_classifier.ipynb"
    path.parent.mkdir(parents=True)
    path.write_text(earning_without_training())
    monkeypatch.setattr(distributed.Client, "run", lambda self, function, *args: {})
    grade_on_cluster([path], "tcp://127.0.0.1:1", results=tmp_path / "results", progress=Progress(1, None))
    assert stored_report(tmp_path / "results", path, settings=run_settings(isolation=f"workers: {worker_facts()}"))


def test_a_cluster_s_result_from_a_worker_with_another_kit_is_not_stored(tmp_path, recording_cluster, monkeypatch):
    """A stored result is for what the workers grade with, asked of them first: a result from a worker
    whose kit, libraries, isolation or locale differs is for this run only (helper-76, helper-77), and a
    rerun grades it again."""
    import autograder.batch.cluster
    from autograder.batch.cluster import grade_on_cluster
    from autograder.batch.progress import Progress

    path = tmp_path / "submitted" / "mallory" / "fashion_mnist" / "fashion_mnist_classifier.ipynb"
    path.parent.mkdir(parents=True)
    path.write_text(earning_without_training())
    monkeypatch.setattr(autograder.batch.cluster, "worker_facts", lambda *args: "the workers asked first")
    [report] = grade_on_cluster([path], "tcp://127.0.0.1:1", results=tmp_path / "results", progress=Progress(1, None))
    assert report.error == "not graded in this test" and not list((tmp_path / "results").glob("*.json"))


def test_a_student_s_link_that_root_copied_into_nbgrader_s_layout_is_not_followed(tmp_path, real_data_dir):
    """`cp -a`, `rsync -a` or `tar` run as root (collecting from the students' homes) copy a student's
    link as a link, which root then owns, in a folder root owns: its owner no longer tells it from the
    instructor's. In nbgrader's layout a student's folder and the assignment's folder in it hold what
    the student handed in, so no link is followed there, whoever owns it. The notebooks are named as
    the shell expands ``submitted/*/fashion_mnist/*.ipynb``: through the links."""
    from autograder.batch.local import grade_notebooks

    submitted = tmp_path / "course" / "submitted"
    alice = submitted / "alice" / "fashion_mnist"
    alice.mkdir(parents=True)
    (alice / SOLUTION.name).write_text(earning_without_training())
    (submitted / "mallory").mkdir()
    (submitted / "mallory" / "fashion_mnist").symlink_to(SOLUTION.parent)  # the assignment's folder a link
    (submitted / "trudy").symlink_to(SOLUTION.parent.parent)  # the student's folder a link
    named = sorted(glob.glob(str(submitted / "*" / "fashion_mnist" / "*.ipynb")))
    assert len(named) == 3
    reports = {Path(r.submission).parent.parent.name: r for r in grade_notebooks(named, data_dir=real_data_dir,
                                                                                   workers=2)}
    for student in ("mallory", "trudy"):
        assert reports[student].score == 0 and "link" in reports[student].error
    assert reports["alice"].score > 0 and not reports["alice"].error
    # The instructor's own links above nbgrader's layout are the instructor's to make.
    (tmp_path / "grading").symlink_to(tmp_path / "course")
    assert read_submitted_bytes(tmp_path / "grading" / "submitted" / "alice" / "fashion_mnist" / SOLUTION.name)
    with pytest.raises(NotebookError, match="link"):
        read_submitted_bytes(tmp_path / "grading" / "submitted" / "trudy" / "fashion_mnist" / SOLUTION.name)


def test_no_link_below_a_submitted_folder_the_walk_went_through_is_followed(tmp_path, monkeypatch):
    """A course collected as root without keeping owners (`cp -r`, `rsync -rl`, unzip) makes every link
    a student made root's. nbgrader's layout is what the walk went through, not what the path's text
    says: below a folder named ``submitted`` no link is followed, however the path names it (deeper
    than the assignment's folder, through the instructor's link to ``submitted`` under another name,
    with ``..``)."""
    course = tmp_path / "course"
    source = course / "source" / "fashion_mnist"
    source.mkdir(parents=True)
    (source / SOLUTION.name).write_text(earning_without_training())
    submitted = course / "submitted"
    (submitted / "bob" / "fashion_mnist").mkdir(parents=True)
    (submitted / "bob" / "fashion_mnist" / SOLUTION.name).write_text("{}")
    (submitted / "alice").mkdir()
    (submitted / "alice" / "fashion_mnist").symlink_to("../../source/fashion_mnist")
    (submitted / "bob" / "fashion_mnist" / "extra").symlink_to("../../../source/fashion_mnist")
    (submitted / "bob" / "work").symlink_to("../../source")
    (tmp_path / "subs").symlink_to("course/submitted")  # the instructor's, named otherwise
    monkeypatch.chdir(submitted / "bob")
    for path in (submitted / "bob" / "fashion_mnist" / "extra" / SOLUTION.name,
                 submitted / "bob" / "work" / "fashion_mnist" / SOLUTION.name,
                 tmp_path / "subs" / "alice" / "fashion_mnist" / SOLUTION.name,
                 Path("../alice/fashion_mnist") / SOLUTION.name,
                 submitted / "bob" / "fashion_mnist" / ".." / ".." / "alice" / "fashion_mnist" / SOLUTION.name):
        with pytest.raises(NotebookError, match="link"):
            read_submitted_bytes(path)
    # Above ``submitted``, and back out of it by ``..``, links are the instructor's to make.
    assert read_submitted_bytes(tmp_path / "subs" / "bob" / "fashion_mnist" / SOLUTION.name) == b"{}"
    (course / "latest").symlink_to("source")
    assert read_submitted_bytes(submitted / ".." / "latest" / "fashion_mnist" / SOLUTION.name)


def test_another_owner_s_file_in_a_student_s_folder_is_refused_where_the_kernel_allows_hard_links(
        tmp_path, monkeypatch):
    """With ``fs.protected_hardlinks`` off, a student can hard-link the solution into their folder; once
    the instructor saves the solution again (Jupyter renames a new file over it) the student's link is
    its only one. A student's folder holds the student's files: another owner's is refused, whatever
    its count of links. A collection root made with `cp -a` keeps the students' owners in root's folders
    and stays readable."""
    import autograder.submission.paths as paths

    monkeypatch.setattr(paths, "_hardlinks_protected", lambda: False)
    eve = tmp_path / "submitted" / "eve" / "fashion_mnist"
    eve.mkdir(parents=True)
    os.chown(eve, STUDENT_UID, STUDENT_UID)
    (eve / SOLUTION.name).write_bytes(SOLUTION.read_bytes())  # root's, its only link
    with pytest.raises(NotebookError, match="another user's file"):
        read_submitted_bytes(eve / SOLUTION.name)
    collected = tmp_path / "collected" / "submitted" / "eve" / "fashion_mnist"
    collected.mkdir(parents=True)
    (collected / SOLUTION.name).write_text("{}")
    os.chown(collected / SOLUTION.name, STUDENT_UID, STUDENT_UID)  # the student's file in root's folder
    assert read_submitted_bytes(collected / SOLUTION.name) == b"{}"


def test_a_link_loop_swapped_in_while_the_class_is_graded_stops_no_classmate_and_spoils_no_stored_result(
        tmp_path, real_data_dir, capsys):
    """The notebooks are named (as the shell expands ``submitted/*/fashion_mnist/*.ipynb``), then mallory
    turns her assignment's folder into a link to itself, and trudy hers into a link to bob's: every path
    the grader names its outputs by, hides from the sandbox or stores under must be the path as given,
    never where links lead (a loop raises; a link to a classmate's folder names the classmate's)."""
    from autograder.batch.store import run_settings, stored_report
    from autograder.cli import main
    from autograder.sandbox.method import sandbox_method

    submitted = tmp_path / "submitted"
    for student in ("bob", "mallory", "trudy"):
        (submitted / student / "fashion_mnist").mkdir(parents=True)
        (submitted / student / "fashion_mnist" / SOLUTION.name).write_text(earning_without_training())
    named = sorted(glob.glob(str(submitted / "*" / "fashion_mnist" / "*.ipynb")))
    for student, target in (("mallory", "fashion_mnist"), ("trudy", "../bob/fashion_mnist")):
        shutil.rmtree(submitted / student / "fashion_mnist")
        (submitted / student / "fashion_mnist").symlink_to(target)
    results, feedback = tmp_path / "results", tmp_path / "feedback"
    status = main(["grade", *named, "--workers", "2", "--results", str(results), "--feedback", str(feedback),
                   "--data-dir", str(real_data_dir)])
    assert status == 0, capsys.readouterr().err
    bob = stored_report(results, Path(named[0]), settings=run_settings(isolation=sandbox_method()))
    assert bob is not None and bob.score > 0 and not bob.error
    assert len(list(results.glob("*.json"))) == 3
    assert (feedback / "bob" / "fashion_mnist").is_dir()


def test_a_submission_a_cluster_lost_is_not_stored_but_graded_again_on_the_next_run(
        tmp_path, recording_cluster, monkeypatch):
    """A worker lost (one student's notebook may kill a shared worker again and again) is the cluster's
    fault, not the result of the submissions it held: storing it would keep a classmate's grade away
    on every rerun."""
    import distributed

    from autograder.batch.cluster import grade_on_cluster
    from autograder.batch.progress import Progress

    path = tmp_path / "submitted" / "bob" / "fashion_mnist" / "fashion_mnist_classifier.ipynb"
    path.parent.mkdir(parents=True)
    path.write_text(earning_without_training())

    def lost(futures):
        for future in futures:
            future.payload = None  # its worker died: no report came back
        return iter(futures)

    monkeypatch.setattr(distributed, "as_completed", lost)
    [report] = grade_on_cluster([path], "tcp://127.0.0.1:1", results=tmp_path / "results", progress=Progress(1, None))
    assert "cluster could not grade it" in report.error
    assert stored_report(tmp_path / "results", path) is None


@pytest.mark.parametrize("planted", ["huge_number", "a_list", "no_states", "unknown_language", "passed_yet_skipped"])
def test_a_stored_file_that_is_no_result_of_this_version_is_graded_again(tmp_path, planted):
    path, file, stored = a_stored_result(tmp_path)
    if planted == "huge_number":  # math.isfinite raised OverflowError and stopped the batch
        stored["usage"] = {"seconds": 10**400}
    elif planted == "a_list":
        stored = [stored]
    elif planted == "unknown_language":  # its feedback page and Gradescope results could never be written
        stored["lang"] = "xx"
    elif planted == "passed_yet_skipped":
        for check in stored["report"]["checks"]:
            check["points"], check["passed"] = check["max_points"], True
        stored["report"]["score"], stored["report"]["error"] = stored["report"]["max_score"], None
        stored["states"] = {check["id"]: "skipped" for check in stored["report"]["checks"]}
    else:  # an earlier version's, which kept no TODO and SKIP
        del stored["states"]
    file.write_text(json.dumps(stored))
    report = stored_report(tmp_path / "results", path)
    assert report is None or (planted == "huge_number" and report.usage == {})


def test_a_result_the_disk_has_no_room_for_stops_no_batch(tmp_path, monkeypatch, real_data_dir):
    """A full disk (the results folder's) once raised out of the batch, every sandbox stopped and no
    report written: a result not kept is this run's only, and a rerun grades that notebook again."""
    import errno

    import autograder.batch.store
    from autograder.batch.local import grade_notebooks

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(autograder.batch.store, "atomic_write", full)
    paths = []
    for student in ("alice", "bob", "x\nFORGED: 100/100\x1b[31m"):
        path = tmp_path / "submitted" / student / "fashion_mnist" / "fashion_mnist_classifier.ipynb"
        path.parent.mkdir(parents=True)
        path.write_text("{not a notebook")
        paths.append(path)
    with pytest.warns(UserWarning, match="No space left on device") as warned:
        reports = grade_notebooks(paths, data_dir=real_data_dir, results=tmp_path / "results", workers=2)
    assert not any(ch in str(w.message) for w in warned for ch in "\n\x1b")  # a folder's name forges no line
    assert [report.submission for report in reports] == [str(path) for path in paths]
    assert all(report.error for report in reports)
    assert all(stored_report(tmp_path / "results", path) is None for path in paths)
