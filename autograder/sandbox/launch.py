"""Run one submission's code in a separate, limited process that can only hand back artifacts.

The child (``python -m autograder.sandbox.child SCRATCH``) gets a scratch folder holding the
sanitized notebook and the kit's inputs, and writes its artifacts there; nothing else it does
reaches the grader. ``confined`` builds the sandbox, for the child (``run_child``) and for any
other kit command that must be kept as tightly (the trainer, which parses what a student wrote).
Its limits:

- wall clock: per cell or function call (enforced in the child by an alarm) and per submission
  (enforced here, by killing the child's whole process tree);
- memory: each process's address space (RLIMIT_AS), so an allocation past the limit fails in
  the child; with cgroups, also the sandbox's processes and in-memory files together;
- processes: RLIMIT_NPROC of a user of its own (``UID_BASE`` + a slot no other running sandbox
  holds), so a fork bomb stops at the cap and a neighbour's count is its own; with cgroups, the
  ``pids`` controller caps the whole tree too;
- files: RLIMIT_FSIZE caps each file it writes; its stdout and stderr go nowhere except the
  last 64 KiB of stderr, kept for the instructor;
- with root and bubblewrap (``bwrap``, the Debian package ``bubblewrap``; ``make setup``
  installs it): an allow-list view of the files. The sandbox sees, read-only, the system's
  runtime (/usr/bin, /usr/lib*, their /bin, /lib* links, /etc/ld.so.cache and /etc/localtime,
  and a passwd/group of its own), the Python it runs on (its prefixes), the kit's modules the
  child needs (``CHILD_MODULES``, as files under ``KIT_ROOT``: never the repository, its .git,
  the checks or the solutions), and read-write only its scratch folder, at the same path; its
  /tmp, /var/tmp and /dev/shm are its own, in memory and capped; /dev is minimal, /proc its own.
  New network (no interface but its own loopback), PID, IPC, UTS, mount and cgroup namespaces;
  it dies with the grader;
- with root and ``unshare`` but no bubblewrap (the fallback): the same namespaces, and in a
  private mount namespace the solution notebooks, the kit's checks and tests, the data folder,
  the other submissions and the results are covered by empty folders (a list of known paths:
  anything else the grader's user can read stays readable);
- with root and namespaces, the scratch folder is, inside the sandbox, a tmpfs of
  ``Limits.scratch_bytes`` at the same path (its pages count in the memory cgroup), holding what
  the grader put there (read-only, the trainer's socket excepted); when the child has ended, its
  ``artifacts/`` is copied to the folder on disk (``sandbox_child.hand_back``) for the grader. The
  tmpfs lives and dies with the sandbox's mount namespace: nothing is mounted on the grader's side.

Without root or namespaces (``isolation() == "limits-only"``) the resource limits and the process
group still apply (as root, with a user of its own where the Python it runs is public), but the
network stays reachable and files readable by the grader's user stay readable: the grader says so
in its output, and the README tells instructors to run it as root. ``sandbox_method()`` says
which of ``bwrap``, ``unshare`` and ``limits-only`` applies, ``describe_isolation()`` says it in
words, and each ``SandboxRun.confinement`` records what its sandbox got.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import pwd
import shutil
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Iterator, Sequence

from autograder.assignment import REPO_ROOT
from autograder.errors import AutograderError
from autograder.limits import Limits
# The launcher's half of the sandbox lives in sandbox_child.py, the one module of the two the child can see.
from autograder.sandbox.child import apply_limits, die_with_parent  # noqa: F401  (apply_limits: importable here too)

STDERR_TAIL = 64 * 1024
GRADING_THREADS = 1  # TensorFlow threads of each sandboxed submission (see run_child)
REAPER = Path(__file__).with_name("reaper.py")  # the sandbox's first process: it measures its peak memory
KIT = Path(__file__).resolve().parent.parent  # the kit's modules, as the grader has them
LAUNCHER = "sandbox/child.py"  # the launcher's half of the sandbox, run as a file (see autograder.sandbox.child)

# The kit's modules the sandbox's child imports, as files of KIT: the only ones it can see. A
# module the child imports that is missing here fails the child with ImportError; a name listed
# here whose file is missing fails every sandbox at start, with a message naming it.
# tests/test_isolation.py checks this against what the child's modules import.
CHILD_MODULES = (
    "__init__",
    "sandbox_child",
    "artifacts",
    "assignment",
    "data",  # the set-up cell does `from autograder.data.fashion_mnist import load_fashion_mnist`
    "errors",
    "fit_client",
    "frames",
    "inputs",
    "notebook",
    "probe",
    "reference",
)
KIT_ROOT = Path("/kit")  # where the sandbox finds them: KIT_ROOT/autograder/NAME.py, PYTHONPATH=KIT_ROOT

UID_BASE = 61000  # each running sandbox runs as UID_BASE + its slot, its group the same number
UID_SLOTS = 1000
PROCESS_MARGIN = 8  # the reaper, bubblewrap and the launcher, counted by the cgroup beside the sandbox's own
CGROUP_V1 = Path("/sys/fs/cgroup")
CGROUP_FOLDER = "autograder"  # CGROUP_V1/CONTROLLER/autograder/slot-N
SLOT_FOLDERS = (Path("/run/autograder-sandbox"), Path("/var/lock/autograder-sandbox"), Path("/tmp/autograder-sandbox-slots"))
# What bubblewrap's sandbox sees of the system (read-only), when it exists here.
SYSTEM_FOLDERS = ("/usr/bin", "/usr/lib", "/usr/lib32", "/usr/lib64", "/usr/libx32")
SYSTEM_LINKS = ("/bin", "/lib", "/lib32", "/lib64", "/libx32")  # links into /usr on a merged-/usr system
SYSTEM_FILES = ("/etc/ld.so.cache", "/etc/localtime")
CPU_INFO = "/sys/devices/system/cpu"  # TensorFlow and the BLAS read the CPU topology here
HAND_BACK = ("artifacts",)  # what comes out of the scratch folder in memory once the child has ended

# The process group of each sandbox running now, with the stop event of the batch it belongs to.
_running: dict[int, threading.Event | None] = {}
_running_lock = threading.Lock()


class SandboxError(AutograderError):
    """The sandbox could not be set up (a module of CHILD_MODULES missing, no free user, ...)."""


@dataclass
class SandboxRun:
    returncode: int | None
    seconds: float
    timed_out: bool
    stderr_tail: str
    isolation: str
    peak_memory_bytes: int | None = None  # the sandbox's peak resident memory, as sandbox_reaper measured it
    # How it was confined (see Confinement.details): method, files, user, cgroups, scratch_bytes...
    confinement: dict = field(default_factory=dict)
    cgroup_peak_memory_bytes: int | None = None  # processes and in-memory files together, from its memory cgroup

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


# --- what this machine allows ------------------------------------------------------------------------

NAMESPACE_OPTIONS = (
    "--unshare-net", "--unshare-pid", "--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try",
    "--hostname", "sandbox", "--die-with-parent",
    # The launcher is the namespace's first process (see sandbox_child.launch): it hands the sandbox's
    # peak memory on to the reaper, which bubblewrap's own first process would not.
    "--as-pid-1",
    # Root inside, with only what the launcher needs to give the sandbox's user its folder and to
    # become that user (which drops them all).
    "--cap-drop", "ALL", "--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID", "--cap-add", "CAP_CHOWN",
)


def bwrap_program() -> str | None:
    return shutil.which("bwrap") or next((p for p in ("/usr/bin/bwrap", "/bin/bwrap") if os.access(p, os.X_OK)), None)


def can_use_bwrap() -> bool:
    program = bwrap_program()
    if os.geteuid() != 0 or program is None:
        return False
    try:
        probe = subprocess.run(
            [program, *NAMESPACE_OPTIONS, "--ro-bind", "/", "/", "--proc", "/proc", "--dev", "/dev",
             "--size", str(2**20), "--tmpfs", "/tmp", "true"],
            capture_output=True, timeout=30,
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return probe.returncode == 0


def can_use_namespaces() -> bool:
    if os.geteuid() != 0 or shutil.which("unshare") is None:
        return False
    try:
        probe = subprocess.run(
            ["unshare", "--net", "--pid", "--mount", "--ipc", "--uts", "--fork", "--kill-child", "true"],
            capture_output=True,
            timeout=30,
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return probe.returncode == 0


_isolation: str | None = None
_method: str | None = None
_probe_lock = threading.Lock()


def isolation() -> str:
    """``namespaces`` (full isolation) or ``limits-only`` (see the module's docstring);
    ``sandbox_method()`` says which kind of full isolation."""
    global _isolation
    with _probe_lock:
        if _isolation is None:
            forced = os.environ.get("AUTOGRADER_ISOLATION")
            if forced in ("namespaces", "limits-only"):
                _isolation = forced
            else:
                _isolation = "namespaces" if _probe_method() != "limits-only" else "limits-only"
    return _isolation


def sandbox_method() -> str:
    """How the sandbox is confined here: ``bwrap`` (an allow-list view of the files, the whole
    design above), ``unshare`` (namespaces and a list of paths covered: bubblewrap is missing) or
    ``limits-only``. ``AUTOGRADER_ISOLATION=unshare`` forces the fallback where bubblewrap works."""
    if isolation() == "limits-only":
        return "limits-only"
    with _probe_lock:
        return _probe_method()


def _probe_method() -> str:
    global _method
    if _method is None:
        forced = os.environ.get("AUTOGRADER_ISOLATION")
        if forced == "limits-only":
            _method = "limits-only"
        elif forced == "unshare":
            _method = "unshare"
        elif can_use_bwrap():
            _method = "bwrap"
        elif forced == "namespaces" or can_use_namespaces():
            _method = "unshare"
        else:
            _method = "limits-only"
    return _method


def cgroup_controllers() -> list[str]:
    """The cgroup v1 controllers this grader can give each sandbox a group of (needs root)."""
    if os.geteuid() != 0:
        return []
    return [
        controller for controller in ("pids", "memory")
        if (CGROUP_V1 / controller / "cgroup.procs").is_file() and os.access(CGROUP_V1 / controller, os.W_OK)
    ]


def describe_isolation() -> str:
    """The grader's line about its sandbox, after ``sandbox: ``."""
    method = sandbox_method()
    if method == "limits-only":
        return ("limits-only (no root or no namespaces: resource limits only; the network and the grader's files "
                "stay reachable)")
    groups = cgroup_controllers()
    common = (
        "no network, a user of its own per sandbox, "
        + (f"cgroups {'+'.join(groups)} per sandbox" if groups else "no cgroups (per-process memory limits only)")
        + ", scratch space in memory and capped"
    )
    if method == "bwrap":
        return f"namespaces (bubblewrap: the sandbox sees only the system's runtime, Python and the kit's child modules; {common})"
    return (f"namespaces (unshare: known private paths covered, other files stay readable; install bubblewrap "
            f"(`make setup`) for an allow-list view; {common})")


# --- what the sandbox must not read (the fallback's list; with bubblewrap, covered where visible) ---------


def hidden_paths(extra: list[Path]) -> list[Path]:
    """What the child must not read: the solutions, the checks and tests, the data, the inputs."""
    from autograder.data.fashion_mnist import find_data_dir

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


def interpreter_paths() -> list[Path]:
    """What the sandbox needs of the Python it runs on: its prefixes and the folders of installed
    packages outside them (a folder of the kit's repository only as part of them, e.g. its .venv)."""
    paths = {Path(sys.base_prefix).resolve(), Path(sys.prefix).resolve(), Path(sys.executable).resolve().parent}
    for entry in sys.path:
        if entry and Path(entry).name in ("site-packages", "dist-packages") and Path(entry).is_dir():
            paths.add(Path(entry).resolve())
    return sorted(p for p in paths if not any(other in p.parents for other in paths))


def child_module_files(modules: Sequence[str] = CHILD_MODULES) -> dict[str, Path]:
    """Each listed module's file, or SandboxError naming those that are missing."""
    names = dict.fromkeys(
        [*(f"{name.rpartition('/')[0]}/__init__" for name in modules if "/" in name), *modules]
    )
    files = {name: KIT / f"{name}.py" for name in names}
    missing = [name for name, path in files.items() if not path.is_file()]
    if missing:
        raise SandboxError(
            "the sandbox cannot start: " + ", ".join(f"autograder/{name}.py" for name in missing)
            + " listed in CHILD_MODULES (autograder/sandbox/launch.py) " + ("is" if len(missing) == 1 else "are")
            + " missing; restore the file or remove the name from CHILD_MODULES"
        )
    return files


# --- a user of its own: slots ------------------------------------------------------------------------


def _slot_folder() -> Path:
    for folder in SLOT_FOLDERS:
        try:
            folder.mkdir(mode=0o700, parents=True, exist_ok=True)
            if not folder.is_symlink() and folder.stat().st_uid == os.geteuid() and os.access(folder, os.W_OK):
                return folder
        except OSError:
            continue
    raise SandboxError(f"no folder for the sandboxes' user slots: none of {', '.join(map(str, SLOT_FOLDERS))} is writable")


def _uid_is_free(uid: int) -> bool:
    try:
        pwd.getpwuid(uid)
        return False  # a real account of this machine: never run a sandbox as it
    except KeyError:
        return True


def processes_of(uid: int) -> list[int]:
    """The processes whose real user is ``uid``."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/status", "rb") as handle:
                    for line in handle:
                        if line.startswith(b"Uid:"):
                            if int(line.split()[1]) == uid:
                                found.append(int(entry))
                            break
            except (OSError, ValueError):
                continue
    return found


def kill_user(uid: int, attempts: int = 50) -> bool:
    """SIGKILL every process of ``uid`` until none is left (a fork bomb forks while it is killed)."""
    for _ in range(attempts):
        left = processes_of(uid)
        if not left:
            return True
        for pid in left:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.02)
    return not processes_of(uid)


class UserSlot:
    """A user id no other running sandbox has (held with a lock file: across threads and graders),
    with the passwd and group files its sandbox sees."""

    def __init__(self):
        folder = _slot_folder()
        for index in range(UID_SLOTS):
            uid = UID_BASE + index
            if not _uid_is_free(uid):
                continue
            handle = os.open(folder / f"slot-{index}.lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(handle)
                continue
            if not kill_user(uid):  # left by a grader killed outright, and unkillable: another slot
                os.close(handle)
                continue
            self.index, self.uid, self.gid, self._lock = index, uid, uid, handle
            self.etc = folder / f"slot-{index}"
            try:
                self._write_etc()
            except BaseException:
                self.release()
                raise
            return
        raise SandboxError(f"all {UID_SLOTS} sandbox users ({UID_BASE}-{UID_BASE + UID_SLOTS - 1}) are in use")

    def _write_etc(self) -> None:
        self.etc.mkdir(mode=0o755, exist_ok=True)
        files = {
            "passwd": f"root:x:0:0:root:/nonexistent:/usr/sbin/nologin\n"
                      f"sandbox:x:{self.uid}:{self.gid}:sandbox:/nonexistent:/usr/sbin/nologin\n"
                      "nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n",
            "group": f"root:x:0:\nsandbox:x:{self.gid}:\nnogroup:x:65534:\n",
            "nsswitch.conf": "passwd: files\ngroup: files\nhosts: files\n",
        }
        for name, text in files.items():
            path = self.etc / name
            if not path.is_file() or path.read_text() != text:
                temporary = self.etc / f".{name}.new"
                temporary.write_text(text)
                os.chmod(temporary, 0o644)
                os.replace(temporary, path)
        empty = self.etc / "empty"  # what covers a file the sandbox must not read
        if not empty.is_file():
            empty.write_bytes(b"")
        os.chmod(empty, 0)

    def release(self) -> None:
        if self._lock is not None:
            kill_user(self.uid)
            os.close(self._lock)
            self._lock = None


# --- cgroups ---------------------------------------------------------------------------------------------


class SandboxCgroup:
    """The sandbox's own group in each writable cgroup v1 controller: ``pids.max`` the process cap,
    ``memory.limit_in_bytes`` the memory limit (its processes and its tmpfs pages together)."""

    def __init__(self, name: str, limits: Limits):
        self.paths: dict[str, Path] = {}
        settings = {
            "pids": [("pids.max", limits.processes + PROCESS_MARGIN)],
            "memory": [("memory.limit_in_bytes", limits.memory_bytes), ("memory.memsw.limit_in_bytes", limits.memory_bytes),
                       ("memory.max_usage_in_bytes", 0)],
        }
        for controller in cgroup_controllers():
            path = CGROUP_V1 / controller / CGROUP_FOLDER / name
            try:
                path.mkdir(parents=True, exist_ok=True)
                self._empty(path)  # left by a grader killed outright
                for setting, value in settings[controller]:
                    if (path / setting).exists():
                        (path / setting).write_text(str(value))
            except OSError:  # a controller that will not take it (a container's): the rlimits still hold
                with contextlib.suppress(OSError):
                    path.rmdir()
                continue
            self.paths[controller] = path
        self._procs = [os.fsencode(path / "cgroup.procs") for path in self.paths.values()]

    def enter(self) -> None:
        """In the forked process before ``exec``: into the groups, with all it will start."""
        pid = str(os.getpid()).encode()
        for procs in self._procs:
            handle = os.open(procs, os.O_WRONLY)
            try:
                os.write(handle, pid)
            finally:
                os.close(handle)

    def peak_memory_bytes(self) -> int | None:
        with contextlib.suppress(OSError, ValueError, KeyError):
            return int((self.paths["memory"] / "memory.max_usage_in_bytes").read_text())
        return None

    @staticmethod
    def _empty(path: Path) -> None:
        for _ in range(250):
            try:
                pids = [int(line) for line in (path / "cgroup.procs").read_text().split()]
            except OSError:
                return
            if not pids:
                return
            for pid in pids:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            time.sleep(0.02)

    def close(self) -> None:
        """Kill whatever is left in the groups, then remove them."""
        for path in self.paths.values():
            self._empty(path)
            for _ in range(50):
                try:
                    path.rmdir()
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    self._empty(path)
                    time.sleep(0.02)
        self.paths = {}


# --- the writable folder, for the sandbox's user -----------------------------------------------------------


def _chown_for(folder: Path, uid: int, gid: int) -> None:
    """The folder for the sandbox's user, with the files the grader put in it (the notebook, its
    socket); its folders (the batch's inputs, hard links shared by every sandbox) stay root's."""
    os.chown(folder, uid, gid)
    os.chmod(folder, 0o700)
    for entry in os.scandir(folder):
        if not (entry.is_symlink() or entry.is_dir(follow_symlinks=False)):
            os.chown(entry.path, uid, gid, follow_symlinks=False)


def _give_back(folder: Path) -> None:
    """No user but root enters the folder any more (its user may be another sandbox's next)."""
    with contextlib.suppress(OSError):
        os.chown(folder, 0, 0)
        os.chmod(folder, 0o700)


# --- one mechanism for every confined command ---------------------------------------------------------


@dataclass
class Confinement:
    """A command ready to run confined: pass ``argv``, ``env``, ``cwd``, ``pass_fds`` and
    ``preexec_fn`` to ``subprocess.Popen`` (add ``start_new_session=True`` to kill its group whole),
    and read its exit status through ``exit_status``."""

    argv: list[str]
    env: dict[str, str]
    cwd: str
    preexec_fn: Callable[[], None]
    method: str
    details: dict  # what was used: method, files, network, namespaces, user, cgroups, scratch_bytes...
    cgroup: SandboxCgroup | None = None
    pass_fds: tuple[int, ...] = ()  # the descriptor the launcher copies the hand-back to

    def exit_status(self, returncode: int | None) -> int | None:
        """As ``Popen.returncode`` reads for the command itself: in a PID namespace of its own, the
        sandbox exits with 128 + N when the command was killed by signal N (see sandbox_child.launch)."""
        if self.method in ("bwrap", "unshare") and returncode is not None and 128 < returncode < 128 + 65:
            return -(returncode - 128)
        return returncode

    def cgroup_peak_memory_bytes(self) -> int | None:
        return self.cgroup.peak_memory_bytes() if self.cgroup is not None else None


def _covers(bound: list[Path], hidden: Iterable[Path], needed: list[Path]) -> list[Path]:
    """The hidden paths bubblewrap's view would still show (inside a folder bound for the
    interpreter, such as the data under /usr/share), but none that holds what the sandbox needs."""
    found = set()
    for path in hidden:
        path = path.resolve()
        if any(b == path or b in path.parents for b in bound) and not any(n == path or path in n.parents for n in needed):
            found.add(path)
    return sorted(p for p in found if not any(other in p.parents for other in found))


class _View:
    """bubblewrap's options for a view built from nothing: every folder on the way to a mount is
    made 0755 first (bubblewrap would make it 0700: closed to the sandbox's user)."""

    def __init__(self):
        self.args: list[str] = []
        self.made: set[Path] = {Path("/")}
        self.trees: list[Path] = []  # bound from the machine: what is inside exists already

    def _folders_to(self, target: Path) -> None:
        for folder in reversed(target.parents):
            if folder in self.made or any(tree == folder or tree in folder.parents for tree in self.trees):
                continue
            self.args += ["--perms", "0755", "--dir", str(folder)]
            self.made.add(folder)

    def add(self, option: str, *operands: str, target: str, tree: bool = False, before: Sequence[str] = ()) -> None:
        self._folders_to(Path(target))
        self.args += [*before, option, *operands, target]
        self.made.add(Path(target))
        if tree:
            self.trees.append(Path(target))


def _bwrap_argv(
    program: str, *, slot: UserSlot | None, writable: Path, readable: list[Path], modules: dict[str, Path],
    temporary_bytes: int, hide: Iterable[Path], cap: int | None, also_writable: list[Path] = (),
) -> tuple[list[str], list[Path]]:
    view = _View()
    bound: list[Path] = []
    for folder in SYSTEM_FOLDERS:
        if os.path.isdir(folder) and not os.path.islink(folder):
            view.add("--ro-bind", folder, target=folder, tree=True)
            bound.append(Path(folder))
    for link in SYSTEM_LINKS:
        if os.path.islink(link):
            view.add("--symlink", os.readlink(link), target=link)
        elif os.path.isdir(link):
            view.add("--ro-bind", link, target=link, tree=True)
            bound.append(Path(link))
    view.add("--proc", target="/proc", tree=True)
    view.add("--dev", target="/dev", tree=True)
    for folder in ("/tmp", "/var/tmp", "/dev/shm"):
        view.add("--tmpfs", target=folder, before=["--perms", "1777", "--size", str(temporary_bytes)])
    for file in SYSTEM_FILES:
        if os.path.exists(file):
            view.add("--ro-bind", file, target=file)
    if slot is not None:
        for name in ("passwd", "group", "nsswitch.conf"):
            view.add("--ro-bind", str(slot.etc / name), target=f"/etc/{name}")
    if os.path.isdir(CPU_INFO):
        view.add("--ro-bind", CPU_INFO, target=CPU_INFO, tree=True)
    for name, path in modules.items():
        view.add("--ro-bind", str(path), target=str(KIT_ROOT / "autograder" / f"{name}.py"))
    for path in [*interpreter_paths(), *readable]:
        view.add("--ro-bind", str(path), target=str(path), tree=path.is_dir())
        bound.append(path)
    if cap is None:
        view.add("--bind", str(writable), target=str(writable), tree=True)
    else:
        # Its own folder in memory, at the grader's path (the launcher makes it the sandbox's user's),
        # with what the grader put there: read-only, but for a socket (the trainer's).
        view.add("--tmpfs", target=str(writable), before=["--perms", "0700", "--size", str(cap)])
        for entry in sorted(os.scandir(writable), key=lambda entry: entry.name):
            if entry.is_symlink():
                continue
            plain = entry.is_dir(follow_symlinks=False) or entry.is_file(follow_symlinks=False)
            view.add("--ro-bind" if plain else "--bind", entry.path, target=entry.path)
    for path in also_writable:
        view.add("--bind", str(path), target=str(path), tree=True)
    # Defence in depth: what must stay hidden but lies inside a folder bound above (the data in
    # /usr/share when Python is the system's, the kit installed into site-packages).
    needed = [writable.resolve(), *(p.resolve() for p in [*readable, *also_writable]), *interpreter_paths(),
              Path(sys.executable).resolve()]
    covered = _covers(bound, [*hidden_paths(list(hide)), KIT, REPO_ROOT], needed)
    empty = str(slot.etc / "empty") if slot is not None else "/dev/null"
    for path in covered:
        if path.is_dir():
            view.add("--tmpfs", target=str(path), before=["--perms", "0000", "--size", "4096"])
        else:
            view.add("--ro-bind", empty, target=str(path))
    return [program, *NAMESPACE_OPTIONS, *view.args, "--chdir", "/"], covered


@contextlib.contextmanager
def confined(
    argv: Sequence[str],
    *,
    writable: Path,
    limits: Limits,
    readable: Sequence[Path] = (),
    env: dict[str, str] | None = None,
    modules: Sequence[str] = CHILD_MODULES,
    hide: Sequence[Path] = (),
    scratch_bytes: int | None = None,
    hand_back: Sequence[str] = (),
    also_writable: Sequence[Path] = (),
) -> Iterator[Confinement]:
    """Everything needed to run the kit command ``argv`` (``[sys.executable, "-m", "autograder.X", ...]``)
    as the sandbox's child runs: the strongest isolation this machine allows (``sandbox_method()``).

    ``writable``: its one read-write folder, at the same path inside; its working directory and
    HOME. ``readable``: more folders or files it may read, at the same paths. ``modules``: the kit's
    modules it may import (``CHILD_MODULES`` by default; give a trainer its own list). ``env``:
    more variables (PATH, HOME, PYTHONPATH and PYTHONDONTWRITEBYTECODE are set here, whatever
    ``env`` says). ``hide``: paths the fallback without bubblewrap must cover (with bubblewrap
    they are outside the view anyway). ``also_writable``: more folders it may write, at the same
    paths and uncapped (a cache shared by several sandboxes: make it writable by their users).
    ``scratch_bytes``: where namespaces allow, ``writable`` is, inside, a tmpfs of that size (in
    the sandbox's memory limit) holding what was in the folder when ``confined`` was entered
    (read-only, but for sockets); when the command ends, what ``hand_back`` names is copied to the
    folder on disk, the only way anything written there comes out.

    On leaving, whatever the command left running is killed (its cgroups, its user) and its user
    slot is free again. Run it as ``subprocess.Popen(c.argv, env=c.env, cwd=c.cwd, pass_fds=c.pass_fds,
    preexec_fn=c.preexec_fn, start_new_session=True, ...)`` and read its status with
    ``c.exit_status(returncode)``; a wrapper such as the reaper may go in front of ``c.argv``.
    """
    method = sandbox_method()
    writable = Path(writable)
    kit_modules = child_module_files(modules) if method == "bwrap" else {}
    root = os.geteuid() == 0
    # A user of its own wherever the grader is root and the user can reach the interpreter.
    slot = UserSlot() if root and (method != "limits-only" or interpreter_is_public()) else None
    cgroup = None
    out = None
    try:
        cgroup = SandboxCgroup(f"slot-{slot.index}", limits) if slot is not None and cgroup_controllers() else None
        uid, gid = (slot.uid, slot.gid) if slot is not None else (None, None)
        cap = scratch_bytes if scratch_bytes is not None and slot is not None and method != "limits-only" else None
        if uid is not None:
            _chown_for(writable, uid, gid)
        if cap is not None:
            out = os.open(writable, os.O_RDONLY | os.O_DIRECTORY)  # for the launcher: where hand_back copies to
            os.set_inheritable(out, True)
        launcher_config = {
            "method": method,
            "init": method in ("bwrap", "unshare"),  # the first process of a PID namespace of its own
            "uid": uid,
            "gid": gid,
            "own_user": slot is not None,
            "limits": limits.to_json(),
            "cwd": str(writable),
            "writable": str(writable),
            "temporary_bytes": limits.temporary_bytes,
            "cap": {"bytes": cap, "out": out, "hand_back": list(hand_back)} if cap is not None else None,
            "hide": [],
            "reach": [],
        }
        variables = {**(env or {}), "HOME": str(writable), "PYTHONDONTWRITEBYTECODE": "1"}
        covered: list[Path] = []
        if method == "bwrap":
            prefix, covered = _bwrap_argv(
                bwrap_program(), slot=slot, writable=writable, readable=[Path(p) for p in readable],
                modules=kit_modules, temporary_bytes=limits.temporary_bytes, hide=hide, cap=cap,
                also_writable=[Path(p) for p in also_writable],
            )
            launcher = str(KIT_ROOT / "autograder" / LAUNCHER)
            variables.update({"PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin", "PYTHONPATH": str(KIT_ROOT)})
        else:
            launcher = str(KIT / LAUNCHER)
            variables.update({"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PYTHONPATH": str(REPO_ROOT)})
            prefix = []
            if method == "unshare":
                # Never cover what the command needs: its folders, the kit, the Python it runs on.
                needed = [writable.resolve(), KIT / LAUNCHER, *child_module_files(modules).values(),
                          *(Path(p).resolve() for p in [*readable, *also_writable]), Path(sys.prefix).resolve(),
                          Path(sys.executable).resolve()]
                covered = [p for p in hidden_paths(list(hide)) if not any(n == p or p in n.parents for n in needed)]
                launcher_config["hide"] = [str(p) for p in covered]
                # What the sandbox's user must be able to enter: the Python it runs, the kit, its readable paths.
                launcher_config["reach"] = sorted(
                    {str(Path(sys.base_prefix).resolve()), str(Path(sys.prefix).resolve()), str(REPO_ROOT),
                     *(str(Path(p).resolve()) for p in [*readable, *also_writable])}
                )
                prefix = ["unshare", "--net", "--pid", "--mount", "--ipc", "--uts", "--fork", "--kill-child"]
        command = [
            *prefix, sys.executable, "-I", "-S", launcher, "--launch", json.dumps(launcher_config), "--", *argv,
        ]

        def preexec() -> None:
            if cgroup is not None:
                cgroup.enter()
            die_with_parent()

        details = {
            "method": method,
            "files": {"bwrap": "allow-list", "unshare": "hide-list"}.get(method, "the grader's"),
            "network": "none" if method != "limits-only" else "the grader's",
            "namespaces": {"bwrap": ["mount", "net", "pid", "ipc", "uts", "cgroup"],
                           "unshare": ["mount", "net", "pid", "ipc", "uts"]}.get(method, []),
            "user": uid,
            "cgroups": sorted(cgroup.paths) if cgroup is not None else [],
            "scratch_bytes": cap,
            "temporary_bytes": limits.temporary_bytes if method != "limits-only" else None,
            "covered": [str(p) for p in covered],
        }
        yield Confinement(
            argv=command, env=variables, cwd=str(writable), preexec_fn=preexec, method=method, details=details,
            cgroup=cgroup, pass_fds=(out,) if out is not None else (),
        )
    finally:
        if out is not None:
            os.close(out)
        if cgroup is not None:
            cgroup.close()  # kills whatever is left in it first
        if slot is not None:
            slot.release()  # kills whatever is left of its user first
            _give_back(writable)


# --- the child -----------------------------------------------------------------------------------------


def run_child(
    scratch: Path, limits: Limits, *, hide: list[Path] = (), on_started=None, stop: threading.Event | None = None
) -> SandboxRun:
    """Run the sandbox child on a prepared scratch folder and wait for it, within the limits.

    ``on_started``: called once the child runs, for the grader's own work meanwhile.
    ``stop``: the batch's event, set when it is being stopped (see ``stop_running_sandboxes``).
    What the grader puts in the scratch folder must be there before this is called (the child
    sees it read-only, a socket excepted); what the child writes comes back in ``artifacts/``."""
    mode = isolation()
    (scratch / "sandbox.json").write_text(json.dumps({"scratch": str(scratch), "limits": limits.to_json()}))
    env = {
        "TF_CPP_MIN_LOG_LEVEL": "3",
        "MPLBACKEND": "Agg",
        "MPLCONFIGDIR": str(scratch / ".matplotlib"),
        "KERAS_HOME": str(scratch / ".keras"),
        # One thread per submission, whatever the number of workers: a grade must not depend on
        # how many submissions ran beside it (the thread count changes how sums are split, so the
        # last bits of the weights), and this network trains no faster on two threads than on
        # one (benchmarks/grade_batch.py), so workers, not threads, use the cores.
        **{name: str(GRADING_THREADS) for name in ("TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS", "OMP_NUM_THREADS")},
    }
    started = time.monotonic()
    with confined(
        [sys.executable, "-m", "autograder.sandbox.child", str(scratch)], writable=scratch, limits=limits,
        env=env, hide=list(hide), scratch_bytes=limits.scratch_bytes, hand_back=HAND_BACK,
    ) as box:
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
        cgroup_peak = box.cgroup_peak_memory_bytes()
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
