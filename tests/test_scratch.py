"""A grader removes the temporary folders of graders that were killed, and never those of one alive."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from autograder.sandbox import scratch


def a_process_that_ended() -> tuple[int, int]:
    """The PID and start time of a process that has exited."""
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    started = scratch._start_ticks(child.pid)
    child.kill()
    child.wait()
    assert started
    return child.pid, started


def folder(root: Path, name: str, megabytes: int = 1) -> Path:
    path = root / name
    (path / "inputs").mkdir(parents=True)
    (path / "inputs" / "images.npy").write_bytes(b"\0" * megabytes * 2**20)
    return path


def test_folders_of_a_killed_grader_are_removed_and_their_size_told(tmp_path):
    namespace = scratch._pid_namespace()
    pid, started = a_process_that_ended()
    batch = folder(tmp_path, f"autograder-batch-{namespace}.{pid}.{started}-abc", megabytes=3)
    sandbox = folder(tmp_path, f"autograder-sandbox-{namespace}.{pid}.{started}-def", megabytes=0)
    os.link(batch / "inputs" / "images.npy", sandbox / "inputs" / "linked.npy")  # as sandboxes share the inputs

    assert sorted(scratch.left_by_dead_graders(tmp_path)) == [batch, sandbox]
    assert scratch.remove_left_by_dead_graders(tmp_path) == (2, 3 * 2**20)  # the hard link counted once
    assert list(tmp_path.iterdir()) == []


def test_a_reused_pid_does_not_keep_a_dead_graders_folders(tmp_path):
    # This process's PID, but another start time: the grader that had this PID before is gone.
    namespace, me = scratch._pid_namespace(), os.getpid()
    stale = folder(tmp_path, f"autograder-batch-{namespace}.{me}.{scratch._start_ticks(me) - 1}-abc")
    assert scratch.left_by_dead_graders(tmp_path) == [stale]


def test_what_is_not_a_dead_graders_folder_stays(tmp_path):
    namespace = scratch._pid_namespace()
    pid, started = a_process_that_ended()
    mine = scratch.new_folder("batch", tmp_path)  # this grader is alive
    other_namespace = folder(tmp_path, f"autograder-batch-{namespace + 1}.{pid}.{started}-abc")  # another container's
    unknown_start = folder(tmp_path, f"autograder-batch-{namespace}.{pid}.0-abc")
    unrelated = [folder(tmp_path, name) for name in ("autograder-results", "autograder-abc123", f"my-batch-{pid}")]
    target = folder(tmp_path, "elsewhere")
    link = tmp_path / f"autograder-batch-{namespace}.{pid}.{started}-link"
    link.symlink_to(target)

    assert scratch.left_by_dead_graders(tmp_path) == []
    assert scratch.remove_left_by_dead_graders(tmp_path) == (0, 0)
    for path in (mine, other_namespace, unknown_start, *unrelated, target / "inputs" / "images.npy"):
        assert path.exists()


def test_a_new_folder_names_this_grader():
    made = scratch.new_folder("sandbox")
    try:
        assert made.parent == scratch.scratch_root()
        assert made.name.startswith(f"autograder-sandbox-{scratch.owner()}-")
        assert scratch.owner() == f"{scratch._pid_namespace()}.{os.getpid()}.{scratch._start_ticks(os.getpid())}"
    finally:
        made.rmdir()
