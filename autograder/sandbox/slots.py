"""What each running sandbox holds alone: a user of its own (a slot), and its cgroups.

A user: ``UID_BASE`` + a slot no other running sandbox holds (a lock file per slot, held across
threads and graders), with the passwd and group files its sandbox sees. Its processes count
against RLIMIT_NPROC as its own, so a fork bomb stops at the cap and a neighbour's count is its
own; on release, every process of that user is killed. Cgroups (v1, with root): the sandbox's own
group in ``pids`` (the process cap for the whole tree) and ``memory`` (its processes and its
in-memory files together). Its writable folder is the user's while the sandbox runs, root's after.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import fcntl
import itertools
import os
import pwd
import signal
import time
from pathlib import Path

from autograder.errors import SandboxError
from autograder.files import atomic_write
from autograder.limits import Limits

UID_BASE = 61000  # each running sandbox runs as UID_BASE + its slot, its group the same number
UID_SLOTS = 1000
PROCESS_MARGIN = 8  # the reaper, bubblewrap and the launcher, counted by the cgroup beside the sandbox's own
CGROUP_V1 = Path("/sys/fs/cgroup")
CGROUP_FOLDER = "autograder"  # CGROUP_V1/CONTROLLER/autograder/slot-N, but cpu/autograder-slot-N (group_path)
CPU_SHARES = 1024  # the kernel's default weight, set whatever a parent group says: one share each
# A batch's memory cgroups (a sandbox and a trainer per worker) share what the machine has beyond this:
# the grader itself (1.5 GiB at two workers, measured) and the rest of the system.
MACHINE_RESERVE_BYTES = 3 * 1024**3
# No group is held below this, whatever the share: a sandbox or a trainer of the lesson peaks at 1.2-1.8 GiB.
GROUP_FLOOR_BYTES = 4 * 1024**3
SHARE_STEP_BYTES = 512 * 1024**2
_FRESH = itertools.count()
SLOT_FOLDERS = (
    Path("/run/autograder-sandbox"), Path("/var/lock/autograder-sandbox"), Path("/tmp/autograder-sandbox-slots"),
)


# --- a user of its own: slots ------------------------------------------------------------------------


def _slot_folder() -> Path:
    for folder in SLOT_FOLDERS:
        try:
            folder.mkdir(mode=0o700, parents=True, exist_ok=True)
            if not folder.is_symlink() and folder.stat().st_uid == os.geteuid() and os.access(folder, os.W_OK):
                return folder
        except OSError:
            continue
    raise SandboxError(
        f"no folder for the sandboxes' user slots: none of {', '.join(map(str, SLOT_FOLDERS))} is writable"
    )


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


def status_bytes(pid: int, field: bytes) -> int:
    """A size in the process's status (``b"VmRSS:"``, ``b"VmSize:"``), in bytes; 0 once it is gone."""
    with contextlib.suppress(OSError, ValueError, IndexError, StopIteration):  # StopIteration: no such line
        with open(f"/proc/{pid}/status", "rb") as handle:
            return next(int(line.split()[1]) * 1024 for line in handle if line.startswith(field))
    return 0


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
                atomic_write(path, text, mode=0o644)
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


def cgroup_controllers() -> list[str]:
    """The cgroup v1 controllers this grader can give each sandbox a group of (needs root)."""
    if os.geteuid() != 0:
        return []
    return [
        controller for controller in ("pids", "memory", "cpu")
        if (CGROUP_V1 / controller / "cgroup.procs").is_file() and os.access(CGROUP_V1 / controller, os.W_OK)
    ]


def group_path(controller: str, name: str) -> Path:
    """Where a sandbox's group of ``controller`` lives: under the kit's folder, except ``cpu`` groups,
    which sit at the top beside the machine's other sessions (the kernel's autogroup gives each of
    those one share): under one folder, all the grader's sandboxes together would weigh one session."""
    if controller == "cpu":
        return CGROUP_V1 / controller / f"{CGROUP_FOLDER}-{name}"
    return CGROUP_V1 / controller / CGROUP_FOLDER / name


def machine_memory_bytes() -> int | None:
    """The memory the sandboxes' groups may take together: the machine's, or less where the groups they
    sit in are held lower (the memory hierarchy's root, in a container the container's own group, and
    the kit's folder in it). None where none can be read."""
    sizes = []
    with contextlib.suppress(OSError, ValueError, StopIteration):
        with open("/proc/meminfo", "rb") as handle:
            sizes.append(next(int(line.split()[1]) * 1024 for line in handle if line.startswith(b"MemTotal:")))
    for folder in (CGROUP_V1 / "memory", CGROUP_V1 / "memory" / CGROUP_FOLDER):
        with contextlib.suppress(OSError, ValueError):
            sizes.append(int((folder / "memory.limit_in_bytes").read_text()))
    return min(sizes) if sizes else None


def memory_share(limits: Limits, workers: int, *, per_worker: int = 2, machine: int | None = None,
                 graders: int = 1) -> tuple[Limits, str | None]:
    """``limits`` with each memory cgroup held to its share of the machine, so that the groups a batch
    runs at once (``per_worker`` for each worker: a sandbox and a trainer, or a trainer alone where the
    notebooks run in the grader) never promise more than the machine has beyond
    ``MACHINE_RESERVE_BYTES``: past that, the kernel's killer ends the largest process of the machine,
    which a submission holding its memory in many small processes makes a neighbour's trainer. The
    address space of each process stays ``memory_bytes`` (TensorFlow maps far more than it uses).
    ``machine``: less memory than the machine's that this grader may use (a Dask worker's limit);
    ``graders``: the grading processes ``workers`` counts the threads of (a host's Dask workers), each
    keeping its reserve.
    And a line for the instructor where the groups are held lower, or still promise too much; None otherwise."""
    sizes = [size for size in (machine_memory_bytes(), machine) if size]
    if "memory" not in cgroup_controllers() or not sizes:
        return limits, None
    available = min(sizes)
    groups = per_worker * max(workers, 1)
    # Rounded down, so that a few pages more or less between two boots hold the groups the same.
    share = max(available - MACHINE_RESERVE_BYTES * graders, 0) // groups // SHARE_STEP_BYTES * SHARE_STEP_BYTES
    if share >= limits.memory_bytes:
        return limits, None
    held = min(max(share, GROUP_FLOOR_BYTES), limits.memory_bytes)
    what = "sandboxes and trainers" if per_worker > 1 else "trainers"
    said = (f"memory: {groups} {what} run at once, each allowed {limits.memory_bytes / 2**30:.1f} GiB "
            f"(--memory-limit): more than this machine's {available / 2**30:.1f} GiB holds")
    if held < limits.memory_bytes:
        said += f"; each is held to {held / 2**30:.1f} GiB of memory"
    if share < held:
        said += ("; even so they may take more than the machine has, and one submission can then end a neighbour's "
                 + ("training: grade with fewer workers" if workers > 1 else "training: grade on a larger machine"))
    return dataclasses.replace(limits, group_memory_bytes=held if held < limits.memory_bytes else None), said


class SandboxCgroup:
    """The sandbox's own group in each writable cgroup v1 controller: ``pids.max`` the process cap,
    ``memory.limit_in_bytes`` the memory limit (its processes and its tmpfs pages together), and a
    ``cpu`` group of the same weight as every other sandbox's and trainer's: the scheduler shares the
    cores between groups, not between processes, so a sandbox running hundreds of busy processes
    takes one share, and a neighbour's training is not starved past its time limit."""

    def __init__(self, name: str, limits: Limits):
        self.paths: dict[str, Path] = {}
        settings = {
            "pids": [("pids.max", limits.processes + PROCESS_MARGIN)],
            "memory": [("memory.limit_in_bytes", limits.group_memory),
                       ("memory.memsw.limit_in_bytes", limits.group_memory), ("memory.max_usage_in_bytes", 0)],
            "cpu": [("cpu.shares", CPU_SHARES)],
        }
        for controller in cgroup_controllers():
            # A group left by a grader killed outright may hold what it cannot give back (a file in memory):
            # then one of a name of its own, which starts empty.
            path = (self._made(group_path(controller, name), settings[controller])
                    or self._made(group_path(controller, f"{name}-{os.getpid()}-{next(_FRESH)}"), settings[controller]))
            if path is not None:
                self.paths[controller] = path
            elif controller == "memory" and limits.group_memory_bytes is not None:
                self.close()  # the batch holds each group to its share: never run one without
                raise SandboxError("the sandbox's memory cgroup does not take its share of the machine's memory "
                                   f"({limits.group_memory / 2**30:.1f} GiB); grade with fewer workers")
            # else a controller that will not take it (a container's): the rlimits still hold
        self._procs = [os.fsencode(path / "cgroup.procs") for path in self.paths.values()]
        self._oom_kills_before = self._oom_kills()  # a group reused (left by a grader killed outright) counts on

    def _made(self, path: Path, settings: list) -> Path | None:
        try:
            path.mkdir(parents=True, exist_ok=True)
            self._empty(path)  # left by a grader killed outright
            for setting, value in settings:
                if (path / setting).exists():
                    _set(path, setting, value)
            return path
        except OSError:
            with contextlib.suppress(OSError):
                path.rmdir()
            return None

    def enter(self) -> None:
        """In the forked process before ``exec``: into the groups, with all it will start."""
        pid = str(os.getpid()).encode()
        for procs in self._procs:
            handle = os.open(procs, os.O_WRONLY)
            try:
                os.write(handle, pid)
            finally:
                os.close(handle)

    def oom_kills(self) -> int:
        """How many of its processes the kernel has killed for the group's memory limit since it was made
        (0 where none is known)."""
        return self._oom_kills() - self._oom_kills_before

    def _oom_kills(self) -> int:
        with contextlib.suppress(OSError, ValueError, KeyError, StopIteration):
            lines = (self.paths["memory"] / "memory.oom_control").read_text().splitlines()
            return int(next(line.split()[1] for line in lines if line.startswith("oom_kill ")))
        return 0

    def held_bytes(self) -> int | None:
        """What the group holds that the kernel cannot reclaim: its processes' anonymous memory and its files
        in memory (a tmpfs keeps them after their writer is gone). None without a memory group."""
        with contextlib.suppress(OSError, ValueError, KeyError):
            fields = dict(line.split() for line in (self.paths["memory"] / "memory.stat").read_text().splitlines())
            return int(fields["total_rss"]) + int(fields["total_shmem"])
        return None

    def peak_memory_bytes(self) -> int | None:
        with contextlib.suppress(OSError, ValueError, KeyError):
            return int((self.paths["memory"] / "memory.max_usage_in_bytes").read_text())
        return None

    @staticmethod
    def _empty(path: Path) -> None:
        """Kill every process in the group. A pid read from ``cgroup.procs`` may belong to a process
        that has left since, and be a bystander's by now: each is held by a pid descriptor first, and
        killed through it only if the group still lists it, so the one killed is the one listed."""
        for _ in range(250):
            try:
                pids = _members(path)
            except OSError:
                return
            if not pids:
                return
            held = {}
            for pid in pids:
                with contextlib.suppress(OSError):
                    held[pid] = os.pidfd_open(pid)
            try:
                still = _members(path)
            except OSError:
                still = set()
            for pid, descriptor in held.items():
                with contextlib.suppress(OSError):
                    if pid in still:
                        signal.pidfd_send_signal(descriptor, signal.SIGKILL)
                os.close(descriptor)
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


def _set(path: Path, setting: str, value: int) -> None:
    """One setting of a group. The kernel refuses a memory limit above the group's memory-and-swap limit,
    which a group left by a grader killed outright may hold lower (a batch of more workers, a smaller
    share): that one is raised first."""
    try:
        (path / setting).write_text(str(value))
    except OSError as error:
        together = path / "memory.memsw.limit_in_bytes"
        if setting != "memory.limit_in_bytes" or error.errno != errno.EINVAL or not together.exists():
            raise
        together.write_text(str(value))
        (path / setting).write_text(str(value))


def _members(path: Path) -> set[int]:
    return {int(line) for line in (path / "cgroup.procs").read_text().split()}


# --- the writable folder, for the sandbox's user -----------------------------------------------------------


def chown_for(folder: Path, uid: int, gid: int) -> None:
    """The folder for the sandbox's user, with the files the grader put in it (the notebook, its
    socket); its folders (the batch's inputs, hard links shared by every sandbox) stay root's."""
    os.chown(folder, uid, gid)
    os.chmod(folder, 0o700)
    for entry in os.scandir(folder):
        if not (entry.is_symlink() or entry.is_dir(follow_symlinks=False)):
            os.chown(entry.path, uid, gid, follow_symlinks=False)


def give_back(folder: Path) -> None:
    """No user but root enters the folder any more (its user may be another sandbox's next)."""
    with contextlib.suppress(OSError):
        os.chown(folder, 0, 0)
        os.chmod(folder, 0o700)

