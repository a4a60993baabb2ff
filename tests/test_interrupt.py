"""Stopping the grader (Ctrl-C, or SIGTERM from `timeout` or a job scheduler) stops it now and leaves nothing behind."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import processes_mentioning

LOOPS = Path(__file__).parent / "attacks" / "loops_forever.ipynb"
PASSES_ALL = Path(__file__).parent / "submissions" / "passes_all.ipynb"


@pytest.fixture
def graders():
    """Graders started by a test, killed with their sandboxes whatever the test's outcome."""
    started: list[subprocess.Popen] = []
    yield started
    for grader in started:
        if grader.poll() is None:
            grader.kill()
            grader.wait()


def as_from_a_terminal() -> None:
    # A shell without job control starts background commands (CI's, `nohup ... &`) with SIGINT
    # ignored, and Python then never turns it into KeyboardInterrupt; a terminal's Ctrl-C is not.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def start_grader(graders: list, *args: str, tmpdir: Path, **kwargs) -> subprocess.Popen:
    grader = subprocess.Popen(
        [sys.executable, "-m", "autograder", "grade", *args], env={**os.environ, "TMPDIR": str(tmpdir)},
        preexec_fn=as_from_a_terminal, **kwargs,
    )
    graders.append(grader)
    return grader


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "Ctrl-C"])
def test_stopping_a_parallel_batch_stops_it_at_once_and_cleans_up(
    stop, tmp_path, real_data_dir, grader_tmpdir, graders
):
    scratch_root = grader_tmpdir
    submitted = tmp_path / "submitted"
    for student in ("ada", "bob", "cy"):  # endless loops: only the grader's stop ends them soon
        (submitted / student).mkdir(parents=True)
        shutil.copy(LOOPS, submitted / student / "fashion_mnist_classifier.ipynb")
    results = tmp_path / "results"
    grader = start_grader(
        graders, str(submitted), "--workers", "2", "--results", str(results), "--data-dir", str(real_data_dir),
        "--cell-time-limit", "600", tmpdir=scratch_root, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    deadline = time.monotonic() + 120
    while len(list(scratch_root.glob("autograder-sandbox-*"))) < 2:
        assert grader.poll() is None and time.monotonic() < deadline, "two sandboxes should be running"
        time.sleep(0.2)
    time.sleep(2)  # well inside the endless loops

    stopped_at = time.monotonic()
    grader.send_signal(stop)
    _, stderr = grader.communicate(timeout=60)
    assert time.monotonic() - stopped_at < 30, "stopped now, not after the queued submission"
    assert grader.returncode == 130 and "interrupted" in stderr
    assert list(scratch_root.iterdir()) == [], "no scratch folder, batch inputs or sandbox left behind"
    assert processes_mentioning(str(scratch_root)) == []
    # Nothing was graded: a stopped sandbox is no result, so the same command grades all three again.
    assert not results.exists() or list(results.glob("*.json")) == []


def test_a_grader_killed_outright_takes_its_sandboxes_with_it(tmp_path, real_data_dir, grader_tmpdir, graders):
    submitted = tmp_path / "submitted" / "ada"
    submitted.mkdir(parents=True)
    shutil.copy(LOOPS, submitted / "fashion_mnist_classifier.ipynb")
    grader = start_grader(
        graders, str(submitted), "--results", str(tmp_path / "results"), "--data-dir", str(real_data_dir),
        "--cell-time-limit", "600", tmpdir=grader_tmpdir, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 120
    while not processes_mentioning(f"autograder.sandbox.child {grader_tmpdir}"):
        assert grader.poll() is None and time.monotonic() < deadline, "the sandbox should be running"
        time.sleep(0.2)
    time.sleep(2)  # the sandbox has dropped to the unprivileged user and loops

    grader.kill()  # SIGKILL: no clean-up runs in the grader
    grader.wait()
    deadline = time.monotonic() + 10
    while processes_mentioning(str(grader_tmpdir)) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert processes_mentioning(str(grader_tmpdir)) == [], "the sandbox died with the grader"


def test_stopping_one_batch_leaves_another_batch_of_the_same_process_running(real_data_dir, grader_tmpdir, monkeypatch):
    import tempfile
    import threading

    from autograder.batch.shared import Batch, save_trainer_inputs
    from autograder.batch.steps import grade_submission as grade_in_sandbox
    from autograder.data.inputs import ProbeInputs
    from autograder.data.reference import ReferenceData
    from autograder.limits import Limits
    from autograder.sandbox.launch import stop_running_sandboxes
    from autograder.sandbox.scratch import new_folder

    monkeypatch.setattr(tempfile, "tempdir", str(grader_tmpdir))
    data = ReferenceData.load(real_data_dir)
    batch = new_folder("batch")
    os.chmod(batch, 0o755)
    inputs = ProbeInputs.from_reference(data)
    input_files = inputs.save(batch / "inputs")
    trainer_inputs = save_trainer_inputs(data, batch / "trainer")
    limits = Limits(cell_seconds=600)
    stops = {"first": threading.Event(), "second": threading.Event()}  # two batches, one grader
    reports = {}

    def grade(name: str) -> None:
        reports[name] = grade_in_sandbox(
            LOOPS, Batch(data, inputs, input_files, trainer_inputs, None, limits, stop=stops[name])
        )

    def running_sandboxes() -> int:
        folders = grader_tmpdir.glob("autograder-sandbox-*")
        return len([f for f in folders if processes_mentioning(f"autograder.sandbox.child {f}")])

    threads = {name: threading.Thread(target=grade, args=(name,)) for name in stops}
    for thread in threads.values():
        thread.start()
    try:
        deadline = time.monotonic() + 120
        while running_sandboxes() < 2:
            assert time.monotonic() < deadline, "both sandboxes should be running"
            time.sleep(0.2)
        time.sleep(2)  # both loop

        stops["first"].set()
        stop_running_sandboxes(stops["first"])
        threads["first"].join(timeout=30)
        assert not threads["first"].is_alive(), "the stopped batch's sandbox was killed"
        assert "killed by SIGKILL" in reports["first"].error
        time.sleep(2)
        assert threads["second"].is_alive() and len(list(grader_tmpdir.glob("autograder-sandbox-*"))) == 1, \
            "the other batch's sandbox goes on"
        assert processes_mentioning(f"autograder.sandbox.child {grader_tmpdir}")
    finally:
        for stop in stops.values():
            stop.set()
            stop_running_sandboxes(stop)
        for thread in threads.values():
            thread.join(timeout=30)


def test_stopping_a_batch_while_the_trainer_trains_stops_the_trainer_too(
    tmp_path, real_data_dir, grader_tmpdir, graders
):
    """The trainer is a process of its own, outside the child's process group: stopping the batch
    must end it too, not wait for its training to finish."""
    submitted = tmp_path / "submitted" / "ada"
    submitted.mkdir(parents=True)
    shutil.copy(PASSES_ALL, submitted / "fashion_mnist_classifier.ipynb")
    grader = start_grader(
        graders, str(submitted), "--data-dir", str(real_data_dir), tmpdir=grader_tmpdir,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    deadline = time.monotonic() + 300
    while trainer_busy_seconds(grader_tmpdir) < 15:
        assert grader.poll() is None and time.monotonic() < deadline, "the trainer should be training"
        time.sleep(0.2)
    time.sleep(3)  # well inside the 30 epochs

    stopped_at = time.monotonic()
    grader.send_signal(signal.SIGTERM)
    _, stderr = grader.communicate(timeout=120)
    assert time.monotonic() - stopped_at < 20, "stopped now, not once the training ended"
    assert grader.returncode == 130 and "interrupted" in stderr
    assert processes_mentioning(str(grader_tmpdir)) == [], "no trainer left behind"


def trainer_busy_seconds(root: Path) -> float:
    """CPU seconds used so far by the trainer of a batch under ``root`` (0 if none runs yet): its
    start-up takes a few, so past 15 it is training."""
    ticks = os.sysconf("SC_CLK_TCK")
    busy = 0.0
    for pid in processes_mentioning(str(root)):
        try:
            if b"autograder.trainer" not in Path(f"/proc/{pid}/cmdline").read_bytes():
                continue
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        busy = max(busy, (int(fields[11]) + int(fields[12])) / ticks)  # utime and stime
    return busy
