"""The sandbox's child process: confine itself, run the submission's probes, write the artifacts.

Run by ``autograder.sandbox.run_child`` as ``python -m autograder.sandbox_child SCRATCH``,
inside ``unshare`` where the machine allows it. The confinement happens before any student code
is loaded; from then on, nothing this process does is trusted by the grader.
"""

from __future__ import annotations

import ctypes
import json
import os
import pwd
import sys
from pathlib import Path

MS_REC, MS_PRIVATE, MS_BIND, MS_RDONLY = 0x4000, 0x40000, 0x1000, 0x1


def _mount(source: str, target: str, fstype: str | None, flags: int, data: str | None = None) -> None:
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    result = libc.mount(
        source.encode(), target.encode(), fstype.encode() if fstype else None, flags, data.encode() if data else None
    )
    if result != 0:
        error = ctypes.get_errno()
        raise OSError(error, f"mount {target}: {os.strerror(error)}")


def blocked_ancestor(path: Path) -> Path | None:
    """The highest folder above ``path`` that other users cannot enter (such as /root, mode 700)."""
    for ancestor in reversed(path.parents):
        if ancestor != Path("/") and not os.stat(ancestor).st_mode & 0o001:
            return ancestor
    return None


def reach(needed: Path, staging: Path) -> None:
    """Let an unprivileged user reach ``needed`` when a private folder above it is in the way.

    Typical case: Python installed by pyenv under /root. The private folder is covered by an
    empty tmpfs that others may enter, and ``needed`` alone is mounted back inside it, so the
    rest of that folder (root's home) stays out of sight.
    """
    blocked = blocked_ancestor(needed)
    if blocked is None:
        return
    staging.mkdir(parents=True, exist_ok=True)
    _mount(str(needed), str(staging), None, MS_BIND | MS_REC)
    _mount("tmpfs", str(blocked), "tmpfs", 0, "size=64k,mode=755")
    needed.mkdir(parents=True, exist_ok=True)
    _mount(str(staging), str(needed), None, MS_BIND | MS_REC)


TEMPORARY_FOLDERS = ("/tmp", "/var/tmp", "/dev/shm")


def private_temporary_folders(scratch: Path, needed: list[str]) -> None:
    """Give this child temporary folders of its own, with only its scratch folder (and what it
    needs to run, should the kit live there) mounted back inside.

    Every child runs as the same unprivileged user, so without this a child could reach another
    child's scratch folder in the shared /tmp while both run (workers > 1) and rewrite its
    artifacts, or leave files there for a later one.
    """
    covered = [folder for folder in TEMPORARY_FOLDERS if os.path.isdir(folder)]
    if not any(Path(folder) in scratch.parents for folder in covered):
        covered.append(str(scratch.parent))
    back = sorted(  # a folder before what is inside it
        {Path(path) for path in [str(scratch), *needed] if any(Path(c) in Path(path).parents for c in covered)},
        key=lambda path: len(path.parts),
    )
    handles = {path: os.open(path, os.O_RDONLY | os.O_DIRECTORY) for path in back}  # they outlive the covering
    for folder in covered:
        _mount("tmpfs", folder, "tmpfs", 0, "size=256m,mode=1777")
    for path, handle in handles.items():
        path.mkdir(parents=True, exist_ok=True)
        _mount(f"/proc/self/fd/{handle}", str(path), None, MS_BIND | MS_REC)
        os.close(handle)


def confine(config: dict) -> None:
    """Hide what the student must not read, drop root, apply the resource limits."""
    if config["hide"]:
        _mount("none", "/", None, MS_REC | MS_PRIVATE)  # our mounts stay in this namespace
        _mount("proc", "/proc", "proc", 0)  # this PID namespace's processes only
        for path in config["hide"]:
            if os.path.isdir(path):
                _mount("tmpfs", path, "tmpfs", MS_RDONLY, "size=4k,mode=000")
            else:
                _mount("/dev/null", path, None, MS_BIND)
        private_temporary_folders(Path(config["scratch"]), config["reach"])
        if config["drop_to"]:
            for index, needed in enumerate(config["reach"]):
                reach(Path(needed), Path(config["scratch"]) / f".reach-{index}")
    if config["drop_to"]:
        user = pwd.getpwnam(config["drop_to"])
        os.setgroups([])
        os.setgid(user.pw_gid)
        os.setuid(user.pw_uid)
    from autograder.sandbox import apply_limits, die_with_parent

    # Changing the user clears the parent-death signal (prctl(2)) that `unshare --kill-child` or
    # the reaper set: without this, a grader killed outright would leave this process running.
    die_with_parent()
    apply_limits(config["limits"])


def main(scratch: Path) -> int:
    config = json.loads((scratch / "sandbox.json").read_text())
    confine(config)

    from autograder import skip_slow_optional_imports

    skip_slow_optional_imports()

    # From here on the student's code runs in this process.
    from autograder.artifacts import write_artifacts
    from autograder.assignment import FUNCTIONS
    from autograder.inputs import ProbeInputs
    from autograder.notebook import run_cells
    from autograder.probe import collect
    from autograder.reuse import ReuseFolder

    limits = config["limits"]
    inputs = ProbeInputs.load(scratch / "inputs")
    loaded = run_cells(scratch / "submission.ipynb", cell_seconds=limits["cell_seconds"])
    functions = {name: loaded.function(name) for name in FUNCTIONS}
    artifacts = collect(
        functions,
        inputs,
        cell_errors=loaded.cell_errors,
        call_seconds=limits["cell_seconds"],
        training_seconds=limits["training_seconds"],
        cache=ReuseFolder(scratch / "reuse"),
    )
    write_artifacts(artifacts, scratch / "artifacts")
    return 0


if __name__ == "__main__":
    status = main(Path(sys.argv[1]))
    sys.stdout.flush()
    sys.stderr.flush()
    # No interpreter shutdown: atexit handlers and finalizers the student registered never run.
    os._exit(status)
