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

LOOPS = Path(__file__).parent / "attacks" / "loops_forever.ipynb"


def processes_mentioning(text: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and text.encode() in (entry / "cmdline").read_bytes():
                found.append(int(entry.name))
        except OSError:
            pass
    return found


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "Ctrl-C"])
def test_stopping_a_parallel_batch_stops_it_at_once_and_cleans_up(stop, tmp_path, real_data_dir, grader_tmpdir):
    scratch_root = grader_tmpdir
    submitted = tmp_path / "submitted"
    for student in ("ada", "bob", "cy"):  # endless loops: only the grader's stop ends them soon
        (submitted / student).mkdir(parents=True)
        shutil.copy(LOOPS, submitted / student / "fashion_mnist_classifier.ipynb")
    results = tmp_path / "results"
    grader = subprocess.Popen(
        [sys.executable, "-m", "autograder", "grade", str(submitted), "--workers", "2", "--results", str(results),
         "--data-dir", str(real_data_dir), "--cell-time-limit", "600"],
        env={**os.environ, "TMPDIR": str(scratch_root)}, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    deadline = time.monotonic() + 120
    while len([p for p in scratch_root.glob("autograder-*") if not p.name.startswith("autograder-batch")]) < 2:
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
