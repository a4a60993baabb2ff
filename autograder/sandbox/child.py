"""The sandbox's child process, and the launcher that confines it (or any kit command) first.

Two entries, both started through ``autograder.sandbox.confine.confined`` (which
``autograder.sandbox.launch.run_child`` uses):

- the launcher, ``python -I -S sandbox/child.py --launch CONFIG -- COMMAND...``: the first
  program inside the sandbox's namespaces. It finishes the confinement that needs privileges the
  command must not keep (with ``unshare``, the fallback without bubblewrap: covering the private
  paths and giving the sandbox its own temporary folders), then starts the command as the
  sandbox's own user, with no new privileges, the resource limits and the parent-death signal,
  and stays the PID namespace's first process until it ends (``launch``). It imports nothing of
  the kit's (``-I -S``: no site, no PYTHONPATH).
- the child, ``python -m autograder.sandbox.child SCRATCH``: the command the launcher runs to
  grade one submission. It runs the submission's probes and writes the artifacts; from its first
  line on it is confined, and nothing it does is trusted by the grader.

This module is one of the few the child can see (``autograder.sandbox.view.CHILD_MODULES``): the
grader's side of the sandbox (``confine``, ``launch``, ``method``, ``slots``, ``view``) is not.
"""

from __future__ import annotations

import ctypes
import json
import os
import resource
import signal
import stat
import sys
from contextlib import suppress
from pathlib import Path

MS_RDONLY, MS_NOSUID, MS_NODEV, MS_REMOUNT, MS_BIND, MS_REC, MS_PRIVATE = 0x1, 0x2, 0x4, 0x20, 0x1000, 0x4000, 0x40000
PR_SET_PDEATHSIG, PR_SET_NO_NEW_PRIVS = 1, 38

_libc = ctypes.CDLL("libc.so.6", use_errno=True)


def _mount(source: str | None, target: str, fstype: str | None, flags: int, data: str | None = None) -> None:
    result = _libc.mount(
        source.encode() if source else None, os.fsencode(target), fstype.encode() if fstype else None, flags,
        data.encode() if data else None,
    )
    if result != 0:
        error = ctypes.get_errno()
        raise OSError(error, f"mount {target}: {os.strerror(error)}")


def die_with_parent() -> None:
    """If the parent dies, this process gets SIGKILL. Set again after every change of user (which
    clears it, see prctl(2)); kept across ``exec``."""
    _libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


def apply_limits(limits: dict, own_user: bool | None = None) -> None:
    """The resource limits, set in the sandbox's first process of the command and inherited by all
    it starts. ``own_user``: this process runs as a user of its own (one per running sandbox),
    so the count of processes and threads is this sandbox's alone."""
    resource.setrlimit(resource.RLIMIT_AS, (limits["memory_bytes"], limits["memory_bytes"]))
    resource.setrlimit(resource.RLIMIT_FSIZE, (limits["file_bytes"], limits["file_bytes"]))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    # CPU seconds: a last resort that the kernel enforces even if the grader is gone.
    cpu = int(limits["submission_seconds"] * 2) + 60
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu))
    if os.geteuid() != 0:
        if own_user is None:
            own_user = False
        # Counted per user: as a user of its own this is the sandbox's own count; otherwise the
        # grader user's processes count too, so leave room for them.
        current = len([p for p in os.listdir("/proc") if p.isdigit()])
        cap = limits["processes"] if own_user else current + limits["processes"]
        resource.setrlimit(resource.RLIMIT_NPROC, (cap, cap))


# --- the fallback without bubblewrap: unshare, and a list of paths to cover ----------------------


def blocked_ancestor(path: Path) -> Path | None:
    """The highest folder above ``path`` that other users cannot enter (such as /root, mode 700)."""
    for ancestor in reversed(path.parents):
        if ancestor != Path("/") and not os.stat(ancestor).st_mode & 0o001:
            return ancestor
    return None


def reach(needed: list[str]) -> None:
    """Let an unprivileged user reach ``needed`` where a private folder above is in the way.

    Typical case: Python installed by pyenv under /root. Each private folder is covered by an
    empty tmpfs that others may enter, and only what is needed inside it is mounted back, so the
    rest of that folder (root's home) stays out of sight.
    """
    inside: dict[Path, list[list]] = {}
    for path in map(Path, needed):
        blocked = blocked_ancestor(path)
        if blocked is not None:
            inside.setdefault(blocked, []).append([str(path), True])  # as writable as it was
    for blocked, keep in inside.items():
        allow_only(str(blocked), keep)


TEMPORARY_FOLDERS = ("/tmp", "/var/tmp", "/dev/shm")


def private_temporary_folders(scratch: Path, needed: list[str], size: int = 256 * 1024**2) -> None:
    """Give this sandbox temporary folders of its own, with only its scratch folder (and what it
    needs to run, should the kit live there) mounted back inside.

    Without this a sandbox could reach another sandbox's scratch folder in the shared /tmp while
    both run (workers > 1) and rewrite its artifacts, or leave files there for a later one.
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
        _mount("tmpfs", folder, "tmpfs", MS_NOSUID | MS_NODEV, f"size={size},mode=1777")
    for path, handle in handles.items():
        path.mkdir(parents=True, exist_ok=True)
        _mount(f"/proc/self/fd/{handle}", str(path), None, MS_BIND | MS_REC)
        os.close(handle)


def allow_only(root: str, keep: list[list], links: list[list] = ()) -> None:
    """Cover ``root`` with an empty tmpfs others may enter, read-only, and mount back at their own
    paths only the files and folders in ``keep`` (``[path, writable]``: read-only unless
    writable), with what is mounted inside them, and make again the ``links`` (``[link, target]``)
    on the way to them. bubblewrap's view does the same from nothing (autograder.sandbox.view)."""
    kept = sorted((Path(path), writable) for path, writable in keep)
    kept = [(path, writable) for path, writable in kept if not any(other in path.parents for other, _ in kept)]
    handles = {path: os.open(path, os.O_RDONLY | os.O_NOFOLLOW) for path, _ in kept}  # they outlive the covering
    try:
        _mount("tmpfs", root, "tmpfs", MS_NOSUID | MS_NODEV, "size=1m,mode=755")
        for path, writable in kept:
            _folders_to(Path(root), path)
            if stat.S_ISDIR(os.fstat(handles[path]).st_mode):
                path.mkdir(exist_ok=True)
            else:
                path.touch()
            _mount(f"/proc/self/fd/{handles[path]}", str(path), None, MS_BIND | MS_REC)
            if not writable:
                _mount(None, str(path), None, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV)
        for link, target in links:
            link = Path(link)
            if not any(path == link or path in link.parents for path, _ in kept):  # else there already
                _folders_to(Path(root), link)
                os.symlink(target, link)
        _mount(None, root, None, MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV)
    finally:
        for handle in handles.values():
            os.close(handle)


def _folders_to(root: Path, path: Path) -> None:
    for folder in reversed(path.parents):
        if root in folder.parents and not folder.exists():
            folder.mkdir()
            os.chmod(folder, 0o755)


def cover(paths: list[str]) -> None:
    """In a private mount namespace (``unshare --mount``): what the sandbox must not read, covered by
    an empty folder or an empty file; /proc mounted again for the new PID namespace."""
    _mount(None, "/", None, MS_REC | MS_PRIVATE)  # our mounts stay in this namespace
    _mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV)  # this PID namespace's processes only
    for path in paths:
        if os.path.isdir(path):
            _mount("tmpfs", path, "tmpfs", MS_RDONLY, "size=4k,mode=000")
        else:
            _mount("/dev/null", path, None, MS_BIND)


# --- the scratch folder in memory, capped -----------------------------------------------------------------


def _bind(source: str, target: str, read_only: bool) -> None:
    _mount(source, target, None, MS_BIND)
    if read_only:
        _mount(None, target, None, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV)


def cap_folder(folder: Path, size: int, uid: int, gid: int) -> None:
    """With ``unshare`` (bubblewrap does the same from its options): in this mount namespace, a tmpfs
    of ``size`` bytes over ``folder``, owned by the sandbox's user, with what the grader put in the
    folder mounted back in: read-only, except a socket (the trainer's)."""
    below = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)  # in this namespace: a bind's source must be
    try:
        entries = list(os.scandir(f"/proc/self/fd/{below}"))
        _mount("tmpfs", str(folder), "tmpfs", MS_NOSUID | MS_NODEV, f"size={size},mode=700,uid={uid},gid={gid}")
        for entry in entries:
            source, target = f"/proc/self/fd/{below}/{entry.name}", folder / entry.name
            if entry.is_symlink():
                continue
            plain = entry.is_dir(follow_symlinks=False) or entry.is_file(follow_symlinks=False)
            if entry.is_dir(follow_symlinks=False):
                target.mkdir()
            else:
                target.touch()
            _bind(source, str(target), read_only=plain)
    finally:
        os.close(below)


MAX_HAND_BACK_DEPTH = 16


def hand_back(folder: Path, out: int, names: list[str], budget: int) -> None:
    """Copy ``folder/NAME`` for each name into the folder open as ``out`` (the grader's, on disk):
    folders and regular files only, never through a link, as the sandbox's user, and no more than
    ``budget`` bytes in all (a sparse file takes less room in the tmpfs than on the way out)."""
    left = [budget]
    for name in names:
        _copy(str(folder / name), out, name, 0, left)


def _copy(source: str, out: int, name: str, depth: int, left: list[int]) -> None:
    try:
        status = os.lstat(source)
    except OSError:
        return
    if stat.S_ISDIR(status.st_mode) and depth < MAX_HAND_BACK_DEPTH:
        try:
            os.mkdir(name, 0o700, dir_fd=out)
        except FileExistsError:
            pass
        inside = os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=out)
        try:
            for entry in sorted(os.listdir(source)):
                _copy(os.path.join(source, entry), inside, entry, depth + 1, left)
        finally:
            os.close(inside)
    elif stat.S_ISREG(status.st_mode) and status.st_size <= left[0]:
        left[0] -= status.st_size
        reader = os.open(source, os.O_RDONLY | os.O_NOFOLLOW)
        try:
            writer = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600, dir_fd=out)
            try:
                copied = 0
                while copied < status.st_size:
                    sent = os.sendfile(writer, reader, None, min(1 << 24, status.st_size - copied))
                    if not sent:
                        break
                    copied += sent
            finally:
                os.close(writer)
        finally:
            os.close(reader)


# --- the launcher ------------------------------------------------------------------------------------


def launch(config: dict, command: list[str]) -> None:
    """Confine this process as ``config`` says (see ``autograder.sandbox.confine.confined``), then run ``command``.

    In a PID namespace of its own (``config["init"]``) this process stays its first one, as root
    (with bubblewrap: with no capability but changing user and owner), and runs ``command`` as a
    child: it reaps every orphan, and ends with ``command`` (the namespace, and all still in it,
    end with it), exiting with its status (128 + N when signal N killed it). Staying root, it is
    still killed when the process above it dies (a parent-death signal needs the right to signal
    the process); and, as ``command``'s parent, it hands its peak memory up to the reaper.
    Elsewhere it becomes ``command`` itself.

    With ``config["cap"]`` the writable folder is a capped tmpfs that lives in the sandbox's own
    mount namespace: when ``command`` has ended, every process of the sandbox's user is killed and
    what ``cap["hand_back"]`` names is copied to the grader's folder on disk (``cap["out"]``, a
    descriptor no process of the user ever holds), so the grader reads it once the sandbox is gone.
    """
    uid, gid, cap = config.get("uid"), config.get("gid"), config.get("cap")
    if cap:
        os.set_inheritable(cap["out"], False)  # closed in the command at exec
    if config["method"] == "unshare":
        cover(config["hide"])
        allow_only(config["kit_view"]["root"], config["kit_view"]["keep"], config["kit_view"]["links"])
        private_temporary_folders(Path(config["writable"]), config["reach"], config["temporary_bytes"])
        if cap:
            cap_folder(Path(config["writable"]), cap["bytes"], uid, gid)
        if uid is not None:
            reach(config["reach"])
    elif config["method"] == "bwrap" and cap:  # bubblewrap made the tmpfs, root's
        os.chmod(config["writable"], 0o700)
        os.chown(config["writable"], uid, gid)
    if not config.get("init"):
        become(config, command)
    child = os.fork()
    if child == 0:
        try:
            become(config, command)
        except BaseException:
            import traceback

            traceback.print_exc()
        finally:
            os._exit(127)
    status = _wait_as_init(child)
    if cap and cap["hand_back"]:
        copier = os.fork()
        if copier == 0:
            try:
                _drop(uid, gid)
                for _ in range(2):  # whatever the command left running, so that nothing changes under the copy
                    with suppress(OSError):
                        os.kill(-1, signal.SIGKILL)
                apply_limits(config["limits"], own_user=True)
                hand_back(Path(config["writable"]), cap["out"], cap["hand_back"], cap["bytes"])
                os._exit(0)
            finally:
                os._exit(1)
        _wait_as_init(copier)
    os._exit(os.waitstatus_to_exitcode(status) if os.WIFEXITED(status) else 128 + os.WTERMSIG(status))


def _wait_as_init(child: int) -> int:
    """Reap every process that ends (orphans come to the first process) until ``child`` does; its status."""
    while True:
        try:
            pid, status = os.waitpid(-1, 0)
        except ChildProcessError:
            return 127 << 8
        if pid == child:
            return status


def _drop(uid: int | None, gid: int | None) -> None:
    if uid is not None:
        os.setgroups([])
        os.setresgid(gid, gid, gid)
        os.setresuid(uid, uid, uid)


def become(config: dict, command: list[str]) -> None:
    """Drop to the sandbox's user, forbid new privileges, set the limits, then ``exec`` ``command``."""
    _drop(config.get("uid"), config.get("gid"))
    if _libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:  # no set-user-ID program gives anything back
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_NO_NEW_PRIVS)")
    # Changing the user cleared the parent-death signal: without it, a grader killed outright could
    # leave this process running (outside a PID namespace of its own; inside one, it ends with it).
    die_with_parent()
    apply_limits(config["limits"], own_user=config.get("own_user", False))
    os.chdir(config["cwd"])
    os.execv(command[0], command)


def main(scratch: Path) -> int:
    config = json.loads((scratch / "sandbox.json").read_text())  # the launcher has confined this process
    limits = config["limits"]
    from autograder import import_for_good, skip_slow_optional_imports

    skip_slow_optional_imports()
    try:
        # The set-up cells import them anyway; imported here, the collector never walks them again.
        import_for_good("tensorflow", "keras")
    except Exception as error:  # no student code ran yet: the machine's or the limit's fault, said while it can be
        sys.stderr.write(f"{type(error).__name__}: TensorFlow does not load within the memory limit of one submission "
                         f"({limits['memory_bytes'] / 2**30:g} GiB): grade with a larger --memory-limit\n")
        return 1

    # From here on the student's code runs in this process, where no person can press Ctrl-C.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    from autograder.assignment import EPOCHS, FUNCTIONS
    from autograder.data.inputs import ProbeInputs
    from autograder.i18n import COMPILED_FILE, ENGLISH, load_compiled, speaking
    from autograder.sandbox.artifacts import write_artifacts
    from autograder.sandbox.fit_client import FitClient, SocketTransport
    from autograder.sandbox.probe import collect
    from autograder.submission.notebook import run_cells

    language = config.get("lang", ENGLISH)
    if language != ENGLISH:  # the grader put its catalogue there (autograder.sandbox.launch.run_child)
        load_compiled(language, (scratch / COMPILED_FILE).read_bytes())
    inputs = ProbeInputs.load(scratch / "inputs")
    with speaking(language):
        loaded = run_cells(scratch / "submission.ipynb", cell_seconds=limits["cell_seconds"])
        functions = {name: loaded.function(name) for name in FUNCTIONS}
        artifacts = collect(
            functions,
            inputs,
            cell_errors=loaded.cell_errors,
            call_seconds=limits["cell_seconds"],
            training_seconds=limits["training_seconds"],
            client=FitClient(SocketTransport(scratch / "trainer.sock")),
            epochs=config.get("epochs", EPOCHS),
        )
        write_artifacts(artifacts, scratch / "artifacts")  # a model it cannot save is said in the student's words
    return 0


if __name__ == "__main__":
    if sys.argv[1:2] == ["--launch"] and sys.argv[3:4] == ["--"]:
        launch(json.loads(sys.argv[2]), sys.argv[4:])
    status = main(Path(sys.argv[1]))
    sys.stdout.flush()
    sys.stderr.flush()
    # No interpreter shutdown: atexit handlers and finalizers the student registered never run.
    os._exit(status)
