"""The sandbox's first process reports the sandbox's own peak memory and exits as the sandbox did."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import numpy as np

from autograder.sandbox.launch import REAPER


def reaped(code: str) -> tuple[int, int | None]:
    """Run ``python -c code`` under the reaper: its exit status and the peak it reported, in MiB.

    ``{report}`` in the code stands for the number of the report's file descriptor."""
    read_end, write_end = os.pipe()
    try:
        child = subprocess.Popen(
            [sys.executable, "-I", "-S", str(REAPER), str(write_end), sys.executable, "-c",
             code.replace("{report}", str(write_end))],
            pass_fds=(write_end,),
        )
    finally:
        os.close(write_end)
    child.wait()
    with os.fdopen(read_end, "rb") as reported:
        text = reported.read()
    return child.returncode, (int(text) // 1024 if text.strip() else None)


def test_the_peak_is_the_sandbox_s_own_not_the_grader_s():
    grader_ballast = np.ones(768 * 2**20 // 8)  # this process, like a grader, holds much more than its child
    status, peak = reaped("import numpy as np; hoard = np.ones(160 * 2**20 // 8)")
    assert status == 0
    assert 160 <= peak < 400, peak
    assert grader_ballast.sum() > 0


def test_the_sandbox_s_exit_status_and_signal_come_through():
    assert reaped("import sys; sys.exit(3)")[0] == 3
    status, peak = reaped("import os, signal; os.kill(os.getpid(), signal.SIGKILL)")
    assert status == -signal.SIGKILL and peak is not None


def test_the_sandbox_cannot_write_the_report():
    # The report's descriptor is closed before the sandbox runs: writing a forged figure fails.
    status, peak = reaped("import os, sys\ntry:\n    os.write({report}, b'1\\n')\nexcept OSError:\n    sys.exit(7)")
    assert status == 7 and peak is not None and peak > 1

