"""Run one submission's code in a separate, limited process that can only hand back artifacts.

The child (``python -m autograder.sandbox.child SCRATCH``) gets a scratch folder holding the
sanitized notebook and the kit's inputs, and writes its artifacts there; nothing else it does
reaches the grader. ``run_child`` runs it confined (``autograder.sandbox.confine``) behind the
reaper (``autograder.sandbox.reaper``, which measures its peak memory), and waits for it within
the submission's wall clock, then kills its whole process tree. Its stdout and stderr go nowhere
except the last 64 KiB of stderr, kept for the instructor. ``stop_running_sandboxes`` kills the
sandboxes of a batch that is being stopped.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from autograder.assignment import EPOCHS
from autograder.i18n import COMPILED_FILE, ENGLISH, _, compiled, known_language
from autograder.limits import Limits
from autograder.sandbox.confine import Confinement, confined
from autograder.sandbox.method import isolation

STDERR_TAIL = 64 * 1024
GRADING_THREADS = 1  # TensorFlow threads of each sandboxed submission (see run_child)
REAPER = Path(__file__).with_name("reaper.py")  # the sandbox's first process: it measures its peak memory
HAND_BACK = ("artifacts",)  # what comes out of the scratch folder in memory once the child has ended

# The process group of each sandbox running now, with the stop event of the batch it belongs to.
_running: dict[int, threading.Event | None] = {}  # trainers' too (autograder.trainer.desk)
_running_lock = threading.Lock()


@dataclass
class SandboxRun:
    returncode: int | None
    seconds: float
    timed_out: bool
    stderr_tail: str
    isolation: str
    peak_memory_bytes: int | None = None  # the sandbox's peak resident memory, as the reaper measured it
    # How it was confined (see autograder.sandbox.confine): method, files, user, cgroups, scratch_bytes...
    confinement: dict = field(default_factory=dict)
    cgroup_peak_memory_bytes: int | None = None  # processes and in-memory files together, from its memory cgroup
    cgroup_oom_kills: int = 0  # its processes the kernel killed at the memory cgroup's limit

    @property
    def fault(self) -> str | None:
        """Why the child did not finish normally, in words for the report; None when it did."""
        if self.timed_out:
            return _("the notebook ran past the time limit for one submission (an endless loop?) and was stopped")
        if self.returncode is None or self.returncode == 0:
            return None
        if self.returncode < 0:
            number = -self.returncode
            name = signal.Signals(number).name if number in signal.Signals._value2member_map_ else str(number)
            if number == signal.SIGKILL:
                return _("the grading process was killed by {signal} (out of memory?)").format(signal=name)
            return _("the grading process was killed by {signal}").format(signal=name)
        return _("the grading process exited with status {status} before it finished").format(status=self.returncode)


def run_child(
    scratch: Path, limits: Limits, *, hide: list[Path] = (), stop: threading.Event | None = None,
    epochs: int = EPOCHS, lang: str = ENGLISH,
) -> SandboxRun:
    """Run the sandbox child on a prepared scratch folder and wait for it, within the limits; the child
    asks ``train_model`` for ``epochs`` (the config's) and writes its messages in ``lang`` (the
    catalogue given to it compiled, as ``COMPILED_FILE``: it needs neither the ``.po`` files nor Babel).

    ``stop``: the batch's event, set when it is being stopped (see ``stop_running_sandboxes``).
    What the grader puts in the scratch folder must be there before this is called (the child
    sees it read-only, a socket excepted); what the child writes comes back in ``artifacts/``."""
    mode = isolation()
    lang = known_language(lang)
    if lang != ENGLISH:
        (scratch / COMPILED_FILE).write_bytes(compiled(lang))
    (scratch / "sandbox.json").write_text(json.dumps({"scratch": str(scratch), "limits": limits.to_json(),
                                                      "epochs": epochs, "lang": lang}))
    started = time.monotonic()
    with confined(
        [sys.executable, "-m", "autograder.sandbox.child", str(scratch)], writable=scratch, limits=limits,
        env=_child_environment(scratch), hide=list(hide), scratch_bytes=limits.scratch_bytes, hand_back=HAND_BACK,
    ) as box:
        child, report_read = _start(box, stop)
        tail, reader = _keep_tail(child)
        timed_out = _wait(child, limits.submission_seconds, reader)
        peak = reported_peak(report_read)
        cgroup_peak = box.cgroup_peak_memory_bytes()
        oom_kills = box.cgroup_oom_kills()
        returncode = None if timed_out else box.exit_status(child.returncode)
    return SandboxRun(
        returncode=returncode,
        seconds=time.monotonic() - started,
        timed_out=timed_out,
        stderr_tail=tail.decode("utf-8", "replace"),
        isolation=mode,
        peak_memory_bytes=peak,
        confinement=box.details,
        cgroup_peak_memory_bytes=cgroup_peak,
        cgroup_oom_kills=oom_kills,
    )


def _child_environment(scratch: Path) -> dict[str, str]:
    """The child's variables, beside those ``confined`` sets."""
    return {
        "TF_CPP_MIN_LOG_LEVEL": "3",
        "MPLBACKEND": "Agg",
        "MPLCONFIGDIR": str(scratch / ".matplotlib"),
        "KERAS_HOME": str(scratch / ".keras"),
        # One thread per submission, whatever the number of workers: a grade must not depend on
        # how many submissions ran beside it (the thread count changes how sums are split, so the
        # last bits of the weights), and this network trains no faster on two threads than on
        # one (benchmarks/grade_batch.py), so workers, not threads, use the cores.
        **{name: str(GRADING_THREADS)
           for name in ("TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS", "OMP_NUM_THREADS")},
    }


def _start(box: Confinement, stop: threading.Event | None) -> tuple[subprocess.Popen, int]:
    """The confined child behind the reaper, in a process group of its own, counted among the
    running sandboxes of ``stop``'s batch; with the pipe the reaper reports the peak memory on."""
    report_read, report_write = os.pipe()
    command = [sys.executable, "-I", "-S", str(REAPER), str(report_write), *box.argv]
    try:
        child = subprocess.Popen(
            command,
            cwd=box.cwd,
            env=box.env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            start_new_session=True,  # its own process group, killed whole
            preexec_fn=box.preexec_fn,  # into its cgroups; dies with the grader
            pass_fds=(report_write, *box.pass_fds),
        )
    except BaseException:
        os.close(report_read)
        raise
    finally:
        os.close(report_write)
    register_group(child.pid, stop)
    return child, report_read


def _keep_tail(child: subprocess.Popen) -> tuple[bytearray, threading.Thread]:
    """The last ``STDERR_TAIL`` bytes of the child's stderr, kept by a thread as they come."""
    tail = bytearray()

    def keep_tail():
        for chunk in iter(lambda: child.stderr.read(65536), b""):
            tail.extend(chunk)
            del tail[:-STDERR_TAIL]

    reader = threading.Thread(target=keep_tail, daemon=True)
    reader.start()
    return tail, reader


def _wait(child: subprocess.Popen, seconds: float, reader: threading.Thread) -> bool:
    """Wait for the child at most ``seconds``, then kill what is left of its process group; whether
    it ran out of time."""
    timed_out = False
    try:
        child.wait(timeout=seconds)
    except subprocess.TimeoutExpired:
        timed_out = True
    finally:
        try:
            os.killpg(child.pid, signal.SIGKILL)  # whatever it left behind goes too
        except ProcessLookupError:
            pass
        child.wait()
        unregister_group(child.pid)
        reader.join(timeout=5)
        child.stderr.close()
    return timed_out


def register_group(group: int, stop: threading.Event | None) -> None:
    """Count the process group ``group`` among the batch's (a sandbox, or the trainer beside it), so
    that stopping the batch kills it; kill it now if the batch is already stopping (it started just
    after ``stop_running_sandboxes`` looked)."""
    with _running_lock:
        _running[group] = stop
    if stop is not None and stop.is_set():
        _kill_group(group)


def unregister_group(group: int) -> None:
    with _running_lock:
        _running.pop(group, None)


def _kill_group(group: int) -> None:
    try:
        os.killpg(group, signal.SIGKILL)
    except ProcessLookupError:
        pass


def stop_running_sandboxes(stop: threading.Event) -> None:
    """Kill the sandboxes of the batch whose event is ``stop``, with all they started: that batch is
    being stopped. Another batch graded by this process meanwhile goes on.

    Set ``stop`` first: a sandbox of that batch started after this looked kills itself."""
    with _running_lock:
        groups = [group for group, batch in _running.items() if batch is stop]
    for group in groups:
        _kill_group(group)


def reported_peak(report_read: int) -> int | None:
    """The sandbox's peak memory in bytes as its first process reported it; None if it was stopped first."""
    os.set_blocking(report_read, False)  # every writer is gone by now; never wait on one that is not
    try:
        with os.fdopen(report_read, "rb") as reported:
            text = reported.read(64) or b""
    except (BlockingIOError, OSError):
        return None
    return int(text) * 1024 if text.strip().isdigit() else None
