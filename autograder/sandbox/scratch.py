"""The grader's temporary folders, named after the grader that made them.

A batch copies the data's inputs (47-227 MB) to a temporary folder, and each sandbox works in one
of its own. A grader that is stopped (Ctrl-C, SIGTERM) removes them; one killed outright (the OOM
killer, SIGKILL) cannot, and what it left would pile up in /tmp run after run. So each folder's
name says which grader made it (PID namespace, PID and that process's start time, which together
name one process for as long as the machine runs), and a grader starting a batch removes the
folders of graders that are gone. Folders of a grader alive now, or of one in another PID
namespace (another container sharing /tmp), are never touched.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from pathlib import Path

PREFIX = "autograder-"
_NAME = re.compile(rf"^{PREFIX}[a-z]+-(\d+)\.(\d+)\.(\d+)-")


def scratch_root() -> Path:
    """A temporary folder the sandbox user can reach (pytest's own temporary folders are private)."""
    root = Path(tempfile.gettempdir())
    return root if os.stat(root).st_mode & 0o001 else Path("/tmp")


def _pid_namespace() -> int | None:
    try:
        return os.stat("/proc/self/ns/pid").st_ino
    except OSError:
        return None


def _start_ticks(pid: int) -> int | None:
    """When process ``pid`` started, in clock ticks since boot (field 22 of /proc/PID/stat)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (field 2) may hold spaces and parentheses: count from its last ")".
    return int(stat[stat.rindex(")") + 2:].split()[19])


def owner() -> str:
    """This process, as folder names record it."""
    return f"{_pid_namespace() or 0}.{os.getpid()}.{_start_ticks(os.getpid()) or 0}"


def new_folder(kind: str, root: Path | None = None) -> Path:
    """A new temporary folder of this grader, for ``kind`` (batch, sandbox, task)."""
    return Path(tempfile.mkdtemp(prefix=f"{PREFIX}{kind}-{owner()}-", dir=root or scratch_root()))


def left_by_dead_graders(root: Path | None = None) -> list[Path]:
    """This machine's grader folders under ``root`` whose grader no longer runs."""
    namespace = _pid_namespace()
    if namespace is None:  # no /proc: nothing can be told apart safely
        return []
    left = []
    for folder in (root or scratch_root()).iterdir():
        match = _NAME.match(folder.name)
        if match is None or int(match[1]) != namespace:
            continue
        pid, started = int(match[2]), int(match[3])
        if started == 0:  # its grader could not tell when it started: it cannot be told from another
            continue
        if _start_ticks(pid) != started and folder.is_dir() and not folder.is_symlink():  # gone, or its PID reused
            left.append(folder)
    return left


def held_bytes(folder: Path, seen: set) -> int:
    """Bytes held by the files under ``folder`` not in ``seen`` yet (sandboxes hard-link the inputs)."""
    total = 0
    for parent, _, files in os.walk(folder):
        for name in files:
            try:
                stat = os.lstat(os.path.join(parent, name))
            except OSError:
                continue
            if (stat.st_dev, stat.st_ino) not in seen:
                seen.add((stat.st_dev, stat.st_ino))
                total += stat.st_size
    return total


def remove_left_by_dead_graders(root: Path | None = None) -> tuple[int, int]:
    """Remove what killed graders left: how many folders, and how many bytes they held."""
    count = freed = 0
    seen: set = set()
    for folder in left_by_dead_graders(root):
        held = held_bytes(folder, seen)
        shutil.rmtree(folder, ignore_errors=True)
        if not folder.exists():  # a grader of another user may have left what this one cannot remove
            count, freed = count + 1, freed + held
    return count, freed
