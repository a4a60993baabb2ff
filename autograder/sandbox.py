"""Run one submission's code in a separate, limited process that can only hand back artifacts.

The child (``python -m autograder.sandbox_child SCRATCH``) gets a scratch folder holding the
sanitized notebook and the kit's inputs, and writes its artifacts there; nothing else it does
reaches the grader. Its limits:

- wall clock: per cell or function call (enforced in the child by an alarm) and per submission
  (enforced here, by killing the child's whole process tree);
- memory: its address space (RLIMIT_AS), so an allocation past the limit fails in the child;
- processes: RLIMIT_NPROC for the user it runs as (a fork bomb stops at the cap);
- files: RLIMIT_FSIZE caps each file it writes; its stdout and stderr go nowhere except the
  last 64 KiB of stderr, kept for the instructor;
- with root and Linux namespaces (``unshare``): no network (a new network namespace with no
  interface up), its own PID namespace (killing it kills everything it started), a private mount
  namespace in which the solution notebooks, the kit's checks and tests, the data folder, the
  other submissions and the results are covered by empty folders, and an unprivileged user
  (``nobody``) that owns only the scratch folder.

Without root or namespaces (``isolation() == "limits-only"``) the resource limits and the process
group still apply, but the network stays reachable and files readable by the grader's user stay
readable: the grader says so in its output, and the README tells instructors to run it as root.
"""

from __future__ import annotations

import json
import os
import pwd
import resource
import shutil
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from autograder.assignment import REPO_ROOT
from autograder.limits import Limits

UNPRIVILEGED_USER = "nobody"
STDERR_TAIL = 64 * 1024
GRADING_THREADS = 1  # TensorFlow threads of each sandboxed submission (see run_child)
REAPER = Path(__file__).with_name("sandbox_reaper.py")  # the sandbox's first process: it measures its peak memory
# The process group of each sandbox running now, with the stop event of the batch it belongs to.
_running: dict[int, threading.Event | None] = {}
_running_lock = threading.Lock()


@dataclass
class SandboxRun:
    returncode: int | None
    seconds: float
    timed_out: bool
    stderr_tail: str
    isolation: str
    peak_memory_bytes: int | None = None  # the sandbox's peak resident memory, as sandbox_reaper measured it

    @property
    def fault(self) -> str | None:
        """Why the child did not finish normally, in words for the report; None when it did."""
        if self.timed_out:
            return "the notebook ran past the time limit for one submission (an endless loop?) and was stopped"
        if self.returncode is None or self.returncode == 0:
            return None
        if self.returncode < 0:
            number = -self.returncode
            name = signal.Signals(number).name if number in signal.Signals._value2member_map_ else str(number)
            hint = " (out of memory?)" if number == signal.SIGKILL else ""
            return f"the grading process was killed by {name}{hint}"
        return f"the grading process exited with status {self.returncode} before it finished"


def can_use_namespaces() -> bool:
    if os.geteuid() != 0 or shutil.which("unshare") is None:
        return False
    probe = subprocess.run(
        ["unshare", "--net", "--pid", "--mount", "--fork", "--kill-child", "true"],
        capture_output=True,
        timeout=30,
    )
    return probe.returncode == 0


_isolation: str | None = None


def isolation() -> str:
    """``namespaces`` (full isolation) or ``limits-only`` (see the module's docstring)."""
    global _isolation
    if _isolation is None:
        forced = os.environ.get("AUTOGRADER_ISOLATION")
        _isolation = forced if forced in ("namespaces", "limits-only") else (
            "namespaces" if can_use_namespaces() else "limits-only"
        )
    return _isolation


def hidden_paths(extra: list[Path]) -> list[Path]:
    """What the child must not read: the solutions, the checks and tests, the data, the inputs."""
    from autograder.data import find_data_dir

    paths = [REPO_ROOT / "solutions", REPO_ROOT / "tests", REPO_ROOT / "autograder" / "checks.py", *extra]
    try:
        data_dir = find_data_dir()
    except Exception:
        data_dir = None
    if data_dir is not None:
        paths.append(data_dir)
    resolved = sorted({p.resolve() for p in paths if p.exists()})
    # Covering a folder covers what is inside it (which then cannot be covered again).
    return [p for p in resolved if not any(other in p.parents for other in resolved)]


def interpreter_is_public() -> bool:
    return all(
        os.stat(folder).st_mode & 0o001
        for path in (Path(sys.base_prefix).resolve(), Path(sys.prefix).resolve(), REPO_ROOT)
        for folder in [path, *path.parents]
    )


def die_with_parent() -> None:
    """In the forked child before exec: if the grader dies, the sandbox dies with it."""
    import ctypes

    PR_SET_PDEATHSIG = 1
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


def run_child(
    scratch: Path, limits: Limits, *, hide: list[Path] = (), on_started=None, stop: threading.Event | None = None
) -> SandboxRun:
    """Run the sandbox child on a prepared scratch folder and wait for it, within the limits.

    ``on_started``: called once the child runs, for the grader's own work meanwhile.
    ``stop``: the batch's event, set when it is being stopped (see ``stop_running_sandboxes``)."""
    mode = isolation()
    # Never cover what the child needs: its scratch folder, the kit, the Python it runs on.
    needed = [scratch.resolve(), REPO_ROOT / "autograder" / "probe.py", Path(sys.prefix).resolve(), Path(sys.executable).resolve()]
    covered = [p for p in hidden_paths(list(hide)) if not any(n == p or p in n.parents for n in needed)]
    config = {
        "scratch": str(scratch),
        "limits": limits.to_json(),
        "hide": [str(p) for p in covered] if mode == "namespaces" else [],
        # Without a mount namespace an interpreter under a private folder (pyenv in /root) cannot be
        # made reachable, and the child then stays root (the resource limits still apply).
        "drop_to": UNPRIVILEGED_USER if os.geteuid() == 0 and (mode == "namespaces" or interpreter_is_public()) else None,
        # What the unprivileged user must be able to enter: the Python it runs and the kit.
        "reach": sorted({str(Path(sys.base_prefix).resolve()), str(Path(sys.prefix).resolve()), str(REPO_ROOT)}),
        "python": sys.executable,
    }
    (scratch / "sandbox.json").write_text(json.dumps(config))
    if config["drop_to"]:
        user = pwd.getpwnam(UNPRIVILEGED_USER)
        # Hard links to the batch's inputs and shared trainings: they stay root's, read-only.
        shared = {scratch / "inputs", scratch / "reuse"}
        for path in [scratch, *scratch.rglob("*")]:
            if path not in shared and not shared.intersection(path.parents):
                os.chown(path, user.pw_uid, user.pw_gid)
        os.chmod(scratch, 0o700)
    command = [sys.executable, "-m", "autograder.sandbox_child", str(scratch)]
    if mode == "namespaces":
        command = ["unshare", "--net", "--pid", "--mount", "--fork", "--kill-child", *command]
    report_read, report_write = os.pipe()
    command = [sys.executable, "-I", "-S", str(REAPER), str(report_write), *command]
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(scratch),
        "TF_CPP_MIN_LOG_LEVEL": "3",
        "MPLBACKEND": "Agg",
        "MPLCONFIGDIR": str(scratch / ".matplotlib"),
        "KERAS_HOME": str(scratch / ".keras"),
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYTHONPATH": str(REPO_ROOT),
        # One thread per submission, whatever the number of workers: a grade must not depend on
        # how many submissions ran beside it (the thread count changes how sums are split, so the
        # last bits of the weights), and this network trains no faster on two threads than on
        # one (benchmarks/grade_batch.py), so workers, not threads, use the cores.
        **{name: str(GRADING_THREADS) for name in ("TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS", "OMP_NUM_THREADS")},
    }
    started = time.monotonic()
    try:
        child = subprocess.Popen(
            command,
            cwd=scratch,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            start_new_session=True,  # its own process group, killed whole
            preexec_fn=die_with_parent,
            pass_fds=(report_write,),
        )
    except BaseException:
        os.close(report_read)
        raise
    finally:
        os.close(report_write)
    with _running_lock:
        _running[child.pid] = stop
    if stop is not None and stop.is_set():  # started just after stop_running_sandboxes looked
        os.killpg(child.pid, signal.SIGKILL)
    tail = bytearray()

    def keep_tail():
        for chunk in iter(lambda: child.stderr.read(65536), b""):
            tail.extend(chunk)
            del tail[:-STDERR_TAIL]

    reader = threading.Thread(target=keep_tail, daemon=True)
    reader.start()
    if on_started is not None:
        on_started()
    timed_out = False
    try:
        child.wait(timeout=limits.submission_seconds)
    except subprocess.TimeoutExpired:
        timed_out = True
    finally:
        try:
            os.killpg(child.pid, signal.SIGKILL)  # whatever it left behind goes too
        except ProcessLookupError:
            pass
        child.wait()
        with _running_lock:
            _running.pop(child.pid, None)
        reader.join(timeout=5)
        child.stderr.close()
    peak = reported_peak(report_read)
    return SandboxRun(
        returncode=None if timed_out else child.returncode,
        seconds=time.monotonic() - started,
        timed_out=timed_out,
        stderr_tail=tail.decode("utf-8", "replace"),
        isolation=mode,
        peak_memory_bytes=peak,
    )


def stop_running_sandboxes(stop: threading.Event) -> None:
    """Kill the sandboxes of the batch whose event is ``stop``, with all they started: that batch is
    being stopped. Another batch graded by this process meanwhile goes on.

    Set ``stop`` first: a sandbox of that batch started after this looked kills itself."""
    with _running_lock:
        groups = [group for group, batch in _running.items() if batch is stop]
    for group in groups:
        try:
            os.killpg(group, signal.SIGKILL)
        except ProcessLookupError:
            pass


def reported_peak(report_read: int) -> int | None:
    """The sandbox's peak memory in bytes as its first process reported it; None if it was stopped first."""
    os.set_blocking(report_read, False)  # every writer is gone by now; never wait on one that is not
    try:
        with os.fdopen(report_read, "rb") as reported:
            text = reported.read(64) or b""
    except (BlockingIOError, OSError):
        return None
    return int(text) * 1024 if text.strip().isdigit() else None


def apply_limits(limits: dict) -> None:
    """Called in the child before it runs anything of the student's."""
    resource.setrlimit(resource.RLIMIT_AS, (limits["memory_bytes"], limits["memory_bytes"]))
    resource.setrlimit(resource.RLIMIT_FSIZE, (limits["file_bytes"], limits["file_bytes"]))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    # CPU seconds: a last resort that the kernel enforces even if the grader is gone.
    cpu = int(limits["submission_seconds"] * 2) + 60
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu))
    if os.geteuid() != 0:
        # Counted per user: as `nobody` this is the sandbox's own count; otherwise the grader
        # user's processes count too, so leave room for them.
        current = len([p for p in os.listdir("/proc") if p.isdigit()])
        cap = limits["processes"] if os.getuid() == pwd.getpwnam(UNPRIVILEGED_USER).pw_uid else current + limits["processes"]
        resource.setrlimit(resource.RLIMIT_NPROC, (cap, cap))
