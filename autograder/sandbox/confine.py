"""One mechanism for every confined command: the sandbox's child, and the kit's trainer beside it.

``confined`` builds the sandbox for a kit command that runs or parses what a student wrote, in
the strongest isolation this machine allows (``autograder.sandbox.method``). Its limits:

- wall clock: per cell or function call (enforced in the child by an alarm) and per submission
  (enforced by the caller, ``autograder.sandbox.launch.run_child``, by killing the child's whole
  process tree);
- memory: each process's address space (RLIMIT_AS), so an allocation past the limit fails in
  the child; with cgroups, also the sandbox's processes and in-memory files together;
- processes: RLIMIT_NPROC of a user of its own (``autograder.sandbox.slots``), so a fork bomb
  stops at the cap and a neighbour's count is its own; with cgroups, the ``pids`` controller caps
  the whole tree too;
- files: RLIMIT_FSIZE caps each file it writes;
- with root and bubblewrap (``bwrap``, the Debian package ``bubblewrap``; ``make setup``
  installs it): an allow-list view of the files (``autograder.sandbox.view``). New network (no
  interface but its own loopback), PID, IPC, UTS, mount and cgroup namespaces; it dies with the
  grader;
- with root and ``unshare`` but no bubblewrap (the fallback): the same namespaces, and in a
  private mount namespace the kit's repository reduced to the modules the command runs (and the
  Python it runs on), and elsewhere the known private paths covered by empty folders (anything
  else the grader's user can read outside the repository stays readable);
- with root and namespaces, the writable folder is, inside the sandbox, a tmpfs of
  ``scratch_bytes`` at the same path (its pages count in the memory cgroup), holding what the
  grader put there (read-only, the trainer's socket excepted); when the command has ended, what
  ``hand_back`` names is copied to the folder on disk (``autograder.sandbox.child.hand_back``) for
  the grader. The tmpfs lives and dies with the sandbox's mount namespace: nothing is mounted on
  the grader's side.

Without root or namespaces the resource limits and the process group still apply (as root, with
a user of its own where the Python it runs is public). The limits themselves are set inside, by
the launcher's half of the sandbox (``autograder.sandbox.child``), which every confined command
starts through.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator, Sequence

from autograder.assignment import REPO_ROOT
from autograder.limits import Limits
from autograder.sandbox.child import die_with_parent
from autograder.sandbox.method import bwrap_program, sandbox_method
from autograder.sandbox.slots import SandboxCgroup, UserSlot, cgroup_controllers, chown_for, give_back
from autograder.sandbox.view import (
    CHILD_MODULES,
    KIT_ROOT,
    bwrap_argv,
    child_module_files,
    interpreter_is_public,
    launcher_file,
    unshare_covering,
    unshare_kit_view,
)

UNSHARE = ("unshare", "--net", "--pid", "--mount", "--ipc", "--uts", "--fork", "--kill-child")


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
        sandbox exits with 128 + N when the command was killed by signal N (see
        ``autograder.sandbox.child.launch``)."""
        if self.method in ("bwrap", "unshare") and returncode is not None and 128 < returncode < 128 + 65:
            return -(returncode - 128)
        return returncode

    def cgroup_peak_memory_bytes(self) -> int | None:
        return self.cgroup.peak_memory_bytes() if self.cgroup is not None else None

    def cgroup_held_bytes(self) -> int | None:
        return self.cgroup.held_bytes() if self.cgroup is not None else None

    def cgroup_oom_kills(self) -> int:
        return self.cgroup.oom_kills() if self.cgroup is not None else 0


@dataclass
class _Plan:
    """What ``confined`` was asked for, and what it holds for the command while it runs."""

    method: str
    argv: list[str]
    writable: Path
    limits: Limits
    readable: list[Path]
    also_writable: list[Path]
    modules: Sequence[str]
    hide: list[Path]
    hand_back: list[str]
    slot: UserSlot | None = None
    cgroup: SandboxCgroup | None = None
    cap: int | None = None  # the size of the writable folder's tmpfs, where the sandbox gets one
    out: int | None = None  # the folder on disk, open for the launcher: where hand_back copies to
    covered: list[Path] = field(default_factory=list)

    @property
    def uid(self) -> int | None:
        return self.slot.uid if self.slot is not None else None

    @property
    def gid(self) -> int | None:
        return self.slot.gid if self.slot is not None else None


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
    plan = _Plan(
        method=sandbox_method(), argv=list(argv), writable=Path(writable), limits=limits,
        readable=[Path(p) for p in readable], also_writable=[Path(p) for p in also_writable], modules=modules,
        hide=[Path(p) for p in hide], hand_back=list(hand_back),
    )
    kit_modules = child_module_files(modules) if plan.method == "bwrap" else {}
    try:
        _hold(plan, scratch_bytes)
        command = _command(plan, kit_modules)
        cgroup = plan.cgroup

        def preexec() -> None:
            if cgroup is not None:
                cgroup.enter()
            die_with_parent()

        yield Confinement(
            argv=command, env=_environment(plan.method, plan.writable, env or {}), cwd=str(plan.writable),
            preexec_fn=preexec, method=plan.method, details=_details(plan), cgroup=cgroup,
            pass_fds=(plan.out,) if plan.out is not None else (),
        )
    finally:
        _release(plan)


def _hold(plan: _Plan, scratch_bytes: int | None) -> None:
    """A user of its own wherever the grader is root and the user can reach the interpreter, with
    its cgroups and its folder; where namespaces allow, the folder in memory, capped."""
    if os.geteuid() != 0 or (plan.method == "limits-only" and not interpreter_is_public()):
        return
    plan.slot = UserSlot()
    plan.cgroup = SandboxCgroup(f"slot-{plan.slot.index}", plan.limits) if cgroup_controllers() else None
    chown_for(plan.writable, plan.slot.uid, plan.slot.gid)
    if scratch_bytes is not None and plan.method != "limits-only":
        plan.cap = scratch_bytes
        plan.out = os.open(plan.writable, os.O_RDONLY | os.O_DIRECTORY)
        os.set_inheritable(plan.out, True)


def _release(plan: _Plan) -> None:
    if plan.out is not None:
        os.close(plan.out)
    if plan.cgroup is not None:
        plan.cgroup.close()  # kills whatever is left in it first
    if plan.slot is not None:
        plan.slot.release()  # kills whatever is left of its user first
        give_back(plan.writable)


def _command(plan: _Plan, kit_modules: dict[str, Path]) -> list[str]:
    """The launcher in front of ``plan.argv``, inside bubblewrap or ``unshare`` where they apply;
    notes in ``plan.covered`` the paths covered."""
    config = _launcher_config(plan)
    prefix: Sequence[str] = ()
    if plan.method == "bwrap":
        prefix, plan.covered = bwrap_argv(
            bwrap_program(), slot=plan.slot, writable=plan.writable, readable=plan.readable, modules=kit_modules,
            temporary_bytes=plan.limits.temporary_bytes, hide=plan.hide, cap=plan.cap,
            also_writable=plan.also_writable,
        )
    elif plan.method == "unshare":
        plan.covered, config["reach"] = unshare_covering(
            plan.writable, [*plan.readable, *plan.also_writable], plan.modules, plan.hide
        )
        config["hide"] = [str(p) for p in plan.covered]
        config["kit_view"] = unshare_kit_view(plan.writable, plan.readable, plan.also_writable, plan.modules)
        prefix = UNSHARE
    launcher = launcher_file(plan.method)
    return [*prefix, sys.executable, "-I", "-S", launcher, "--launch", json.dumps(config), "--", *plan.argv]


def _launcher_config(plan: _Plan) -> dict:
    """What the launcher (``autograder.sandbox.child.launch``) does inside before it runs the command."""
    return {
        "method": plan.method,
        "init": plan.method in ("bwrap", "unshare"),  # the first process of a PID namespace of its own
        "uid": plan.uid,
        "gid": plan.gid,
        "own_user": plan.slot is not None,
        "limits": plan.limits.to_json(),
        "cwd": str(plan.writable),
        "writable": str(plan.writable),
        "temporary_bytes": plan.limits.temporary_bytes,
        "cap": {"bytes": plan.cap, "out": plan.out, "hand_back": plan.hand_back} if plan.cap is not None else None,
        "hide": [],
        "reach": [],
    }


def _environment(method: str, writable: Path, env: dict[str, str]) -> dict[str, str]:
    """``env``, with what the sandbox sets whatever ``env`` says."""
    variables = {**env, "HOME": str(writable), "PYTHONDONTWRITEBYTECODE": "1"}
    if method == "bwrap":
        variables.update({"PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin", "PYTHONPATH": str(KIT_ROOT)})
    else:
        variables.update({"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PYTHONPATH": str(REPO_ROOT)})
    return variables


def _details(plan: _Plan) -> dict:
    """How the command is confined, for its ``SandboxRun.confinement``."""
    method = plan.method
    return {
        "method": method,
        "files": {"bwrap": "allow-list", "unshare": "hide-list"}.get(method, "the grader's"),
        "network": "none" if method != "limits-only" else "the grader's",
        "namespaces": {"bwrap": ["mount", "net", "pid", "ipc", "uts", "cgroup"],
                       "unshare": ["mount", "net", "pid", "ipc", "uts"]}.get(method, []),
        "user": plan.uid,
        "cgroups": sorted(plan.cgroup.paths) if plan.cgroup is not None else [],
        "scratch_bytes": plan.cap,
        "temporary_bytes": plan.limits.temporary_bytes if method != "limits-only" else None,
        "covered": [str(p) for p in plan.covered],
    }
