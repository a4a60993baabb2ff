"""Grading untrusted notebooks: the attack suite, faults as results, resuming a killed batch.

Most of these run whole submissions through the sandbox (a few minutes in all), so they are
marked slow: `make test` runs them, plain `pytest` does not.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from autograder.batch.local import grade_notebooks
from autograder.limits import Limits
from autograder.sandbox.method import isolation

ATTACKS = Path(__file__).parent / "attacks"
SUBMISSIONS = Path(__file__).parent / "submissions"
# Stopped only by the limit for a whole submission: graded on its own, under a short one (below),
# rather than holding a core of the suite's batch for all of TEST_LIMITS.submission_seconds.
OUTLASTS_EVERY_ALARM = "ignores_the_alarm_and_loops"
ATTACK_NAMES = sorted(path.stem for path in ATTACKS.glob("*.ipynb") if path.stem != OUTLASTS_EVERY_ALARM)
# Small limits keep the suite quick; the attacks that loop are stopped by the cell's. Training has room
# for the attacks that train 30 epochs on one thread beside a neighbour while the other pytest process
# of `make test` grades a batch too (4 minutes were too few there for a 30-epoch Adam training).
TEST_LIMITS = Limits(submission_seconds=600, cell_seconds=30, training_seconds=480)

needs_isolation = pytest.mark.skipif(
    os.geteuid() != 0, reason="full isolation (namespaces, another user) needs the grader to run as root"
)


class Listener:
    """A TCP server on loopback outside the sandbox: an attack that reaches it has network access."""

    def __init__(self, port: int):
        self.connections = 0
        self.server = socket.create_server(("127.0.0.1", port))
        self.server.settimeout(0.5)
        self.running = True
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self):
        while self.running:
            try:
                connection, _ = self.server.accept()
                self.connections += 1
                connection.close()
            except OSError:
                continue

    def close(self):
        self.running = False
        self.thread.join()
        self.server.close()


@pytest.fixture(scope="module")
def attacked(real_data_dir, tmp_path_factory, kept_trainings):
    """The whole attack suite graded in one batch, as an instructor would: two at a time, beside an
    honest classmate."""
    sys.path.insert(0, str(ATTACKS))
    from make_attacks import NETWORK_PORT

    listener = Listener(NETWORK_PORT)
    results = tmp_path_factory.mktemp("results")
    try:
        reports = grade_notebooks(
            [*(ATTACKS / f"{name}.ipynb" for name in ATTACK_NAMES), SUBMISSIONS / "passes_all.ipynb"],
            data_dir=real_data_dir, limits=TEST_LIMITS, results=results, workers=2, trainings=kept_trainings,
        )
    finally:
        listener.close()
    return {Path(r.submission).stem: r for r in reports}, listener


@needs_isolation
def test_the_machine_gives_full_isolation():
    assert isolation() == "namespaces"


@pytest.mark.slow
@needs_isolation
@pytest.mark.parametrize("name", ATTACK_NAMES)
def test_each_attack_gets_its_honest_score_and_a_reason(name, attacked):
    reports, _ = attacked
    expected = json.loads((ATTACKS / f"{name}.expected.json").read_text())
    report = reports[name]
    assert report.score == expected["score"], [(c.id, c.message) for c in report.checks]
    assert report.max_score == 100
    for where, phrase in expected["messages"].items():
        message = report.error if where == "error" else next(c.message for c in report.checks if c.id == where)
        assert message and phrase in message, message
    text = json.dumps(report.to_json())
    for secret in expected["never"]:
        assert secret not in text


@pytest.mark.slow
@needs_isolation
def test_code_that_ignores_every_alarm_is_stopped_at_the_submission_s_limit_and_its_neighbour_graded(real_data_dir):
    neighbour = SUBMISSIONS / "unfilled_stubs.ipynb"  # an honest student who has not started: no training
    # The set-up cell (TensorFlow's import) must fit inside the cell limit on a busy machine.
    limits = Limits(submission_seconds=90, cell_seconds=40, training_seconds=30)
    reports = grade_notebooks([ATTACKS / f"{OUTLASTS_EVERY_ALARM}.ipynb", neighbour], data_dir=real_data_dir,
                              limits=limits, workers=2)
    expected = json.loads((ATTACKS / f"{OUTLASTS_EVERY_ALARM}.expected.json").read_text())
    assert reports[0].score == expected["score"] and expected["messages"]["error"] in reports[0].error
    honest = json.loads((SUBMISSIONS / "unfilled_stubs.expected.json").read_text())
    assert reports[1].error is None and reports[1].score == honest["score"]
    assert {c.id for c in reports[1].checks if not c.passed} == set(honest["failing"])


@pytest.mark.slow
@needs_isolation
def test_no_attack_reached_the_network(attacked):
    _, listener = attacked
    assert listener.connections == 0


@pytest.mark.slow
@needs_isolation
def test_every_attack_was_graded_and_the_grader_survived(attacked):
    reports, _ = attacked
    assert reports["passes_all"].score == 100, "the honest classmate keeps full marks"
    assert sorted(reports) == sorted([*ATTACK_NAMES, "passes_all"])
    # Even a hoarder's or a fork bomb's cost is measured, and the memory limit held; a sandbox
    # stopped at the time limit is killed whole, its first process too, before it can report.
    for name, report in reports.items():
        assert report.usage["seconds"] > 0, name
        if "time limit" in (report.error or ""):
            assert "sandbox_peak_memory_mib" not in report.usage, name
        else:
            assert 0 < report.usage["sandbox_peak_memory_mib"] <= TEST_LIMITS.memory_bytes / 2**20, name


@pytest.mark.slow
def test_without_namespaces_the_limits_still_stop_runaway_code(real_data_dir, monkeypatch, capsys):
    import io

    monkeypatch.setattr("autograder.sandbox.method._isolation", "limits-only")
    out = io.StringIO()
    names = ["loops_forever", "allocates_all_memory", "calls_os_exit"]
    reports = grade_notebooks(
        [ATTACKS / f"{name}.ipynb" for name in names], data_dir=real_data_dir, limits=TEST_LIMITS, out=out
    )
    assert "sandbox: limits-only" in out.getvalue()
    assert "the network and the grader's files stay reachable" in out.getvalue()
    by_name = {Path(r.submission).stem: r for r in reports}
    assert "ran longer than" in by_name["loops_forever"].checks[0].message
    assert "MemoryError" in by_name["allocates_all_memory"].checks[0].message
    assert "no readable results" in by_name["calls_os_exit"].error
    assert all(r.score == 0 for r in reports)


def run_cli(*args, **kwargs):
    return subprocess.Popen(
        [sys.executable, "-m", "autograder", "grade", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        start_new_session=True,
        **kwargs,
    )


@pytest.mark.slow
def test_a_killed_batch_resumes_without_losing_or_duplicating_a_grade(tmp_path, real_data_dir, grader_tmpdir):
    notebooks = [
        SUBMISSIONS / "unfilled_stubs.ipynb",
        ATTACKS / "loops_forever.ipynb",
        SUBMISSIONS / "not_json.ipynb",
        ATTACKS / "calls_sys_exit.ipynb",
    ]
    results = tmp_path / "results"
    report = tmp_path / "grades.json"
    common = ["--results", str(results), "--json", str(report), "--cell-time-limit", "10",
              "--data-dir", str(real_data_dir)]
    env = {**os.environ, "TMPDIR": str(grader_tmpdir)}  # what SIGKILL leaves behind goes with the test
    first = run_cli(*map(str, notebooks), *common, env=env)
    deadline = time.monotonic() + 300
    while not list(results.glob("*.json")) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert list(results.glob("*.json")), "the first result never appeared"
    os.killpg(first.pid, signal.SIGKILL)  # the grader dies mid-batch (while the endless loop runs)
    first.wait()
    first.stdout.close()
    assert not report.exists()
    done_before = {path.name: path.stat().st_mtime_ns for path in results.glob("*.json")}
    assert 1 <= len(done_before) < len(notebooks)
    left = {path.name.split("-")[1] for path in grader_tmpdir.iterdir()}
    assert left == {"batch", "sandbox", "trainer"}, "a grader killed outright leaves its temporary folders"

    second = run_cli(*map(str, notebooks), *common, env=env)
    output, _ = second.communicate(timeout=600)
    assert second.returncode == 0, output
    graded = json.loads(report.read_text())
    assert [entry["submission"] for entry in graded] == [str(n) for n in notebooks]
    assert len(list(results.glob("*.json"))) == len(notebooks)  # one result each, none twice
    for name, mtime in done_before.items():
        assert (results / name).stat().st_mtime_ns == mtime  # kept, not graded again
    assert output.count("graded earlier") == len(done_before)
    assert [entry["score"] for entry in graded] == [0, 0, 0, 0]
    assert "removed 3 temporary folders" in output and "left by graders that were killed" in output
    assert list(grader_tmpdir.iterdir()) == [], "the next grader removed what the killed one left"


@pytest.mark.slow
def test_grading_the_same_submission_twice_gives_the_same_result(real_data_dir):
    notebook = ATTACKS / "edits_test_cells_points_and_setup.ipynb"
    first, second = (grade_notebooks([notebook], data_dir=real_data_dir, limits=TEST_LIMITS)[0] for _ in range(2))
    assert first.to_json() == second.to_json()
    assert first.score == 10
    # What it cost, measured by the grader on the sandbox (the Python that ran the notebook).
    assert 0 < first.usage["seconds"] < TEST_LIMITS.submission_seconds
    assert 50 < first.usage["sandbox_peak_memory_mib"] < TEST_LIMITS.memory_bytes / 2**20


@pytest.mark.slow  # three submissions through the sandbox, two epochs each
def test_one_trainer_serves_a_worker_s_submissions_and_trains_as_a_new_one_would(real_data_dir, monkeypatch):
    """A grading thread keeps its trainer for its next submission (autograder.trainer.desk.WarmTrainers):
    one start for the batch, and what the warm trainer trains for a submission after another one's
    training is what a new trainer trains for it, to the last digit."""
    from autograder.config import Config
    from autograder.trainer import desk

    starts = []
    start = desk.TrainerProcess.__init__

    def counted(self, *args, **kwargs):
        starts.append(args)
        start(self, *args, **kwargs)

    monkeypatch.setattr(desk.TrainerProcess, "__init__", counted)
    config = Config(epochs=2, pass_mark=0.5)
    passes_all = SUBMISSIONS / "passes_all.ipynb"
    options = dict(data_dir=real_data_dir, limits=TEST_LIMITS, reuse=False, config=config)
    after_another = grade_notebooks([SUBMISSIONS / "adam_instead_of_sgd.ipynb", passes_all], **options)
    assert len(starts) == 1
    assert [report.usage["trainings_run"] for report in after_another] == [2, 2]  # the check of epochs, the training
    (alone,) = grade_notebooks([passes_all], **options)
    assert len(starts) == 2
    assert after_another[1].to_json() == alone.to_json() and alone.score == alone.max_score
    assert after_another[1].history == alone.history and len(alone.history["loss"]) == 2


@pytest.mark.slow
def test_trainings_kept_with_trainings_are_replayed_by_a_later_run(real_data_dir, tmp_path):
    from autograder.cli import main

    notebook = tmp_path / "submitted" / "ann" / "fashion_mnist" / "ten_epochs_only.ipynb"
    notebook.parent.mkdir(parents=True)
    notebook.write_bytes((SUBMISSIONS / "ten_epochs_only.ipynb").read_bytes())
    kept = tmp_path / "trainings"
    assert main(["grade", str(notebook), "--data-dir", str(real_data_dir), "--trainings", str(kept),
                 "--json", str(tmp_path / "first.json")]) == 0
    (first,) = json.loads((tmp_path / "first.json").read_text())
    assert oct(kept.stat().st_mode & 0o777) == "0o700" and len(list(kept.iterdir())) == 2  # the check of epochs too
    (second,) = grade_notebooks([notebook], data_dir=real_data_dir, trainings=kept)
    assert second.usage["trainings_run"] == 0 and any("training reused" in note for note in second.notes)
    assert first["score"] == second.score == 90
    assert first["checks"] == second.to_json()["checks"]


MIXED_BATCH = {
    SUBMISSIONS / "passes_all.ipynb": 100,
    SUBMISSIONS / "labels_divided_by_255.ipynb": 90,
    SUBMISSIONS / "unfilled_stubs.ipynb": 0,
    SUBMISSIONS / "not_json.ipynb": 0,
    ATTACKS / "kills_the_grader.ipynb": 0,
    ATTACKS / "forges_the_results_files.ipynb": 10,
}


@pytest.fixture(scope="module")
def mixed_batch(real_data_dir, tmp_path_factory, kept_trainings):
    """A mixed batch graded by one local worker: what parallel and distributed grading must give too."""
    return grade_notebooks(list(MIXED_BATCH), data_dir=real_data_dir, results=tmp_path_factory.mktemp("results"),
                           trainings=kept_trainings)


@pytest.mark.slow
def test_a_mixed_batch_of_correct_wrong_broken_and_hostile_submissions(mixed_batch):
    assert {r.submission: r.score for r in mixed_batch} == {str(path): score for path, score in MIXED_BATCH.items()}


@pytest.mark.slow
def test_parallel_workers_grade_like_one_worker(real_data_dir, mixed_batch, kept_trainings):
    two = grade_notebooks(list(MIXED_BATCH), data_dir=real_data_dir, workers=2, trainings=kept_trainings)
    # To the last digit of every message: each sandbox trains on one thread, whatever runs beside it.
    assert [r.to_json() for r in two] == [r.to_json() for r in mixed_batch]


@pytest.mark.slow
def test_a_local_dask_cluster_grades_like_local_workers(real_data_dir, tmp_path, mixed_batch):
    from distributed import LocalCluster

    with LocalCluster(
        n_workers=2, threads_per_worker=1, host="127.0.0.1", dashboard_address=None, processes=True
    ) as cluster:
        remote = grade_notebooks(
            list(MIXED_BATCH), data_dir=real_data_dir, scheduler=cluster.scheduler_address,
            results=tmp_path / "results",
        )
    assert [r.to_json() for r in remote] == [r.to_json() for r in mixed_batch]
    assert len(list((tmp_path / "results").glob("*.json"))) == len(MIXED_BATCH)


@pytest.mark.slow
def test_a_memory_limit_too_small_for_tensorflow_is_a_report_that_names_the_limit(real_data_dir):
    """TensorFlow loads in the child before any of the student's code: if it cannot within the limit,
    the instructor's limit is at fault, not the notebook, and the report says which to raise (without
    it, the child's next import failed for want of memory and its last words named a folder of the kit)."""
    # Out of memory, the import fails in more ways than one (MemoryError, SystemError, an ImportError).
    for report in grade_notebooks([SUBMISSIONS / "passes_all.ipynb"] * 3, data_dir=real_data_dir,
                                  limits=Limits(memory_bytes=1024**3)):
        assert report.score == 0
        assert ("TensorFlow does not load within the memory limit of one submission (1 GiB): grade with a larger "
                "--memory-limit)") in report.error
