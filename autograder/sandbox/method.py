"""Which confinement this machine allows, and the grader's line about it.

``bwrap`` (with root and bubblewrap: the allow-list view of ``autograder.sandbox.view``),
``unshare`` (with root and namespaces but no bubblewrap: the same namespaces, and a list of
paths covered) or ``limits-only`` (no root or no namespaces: the resource limits and the process
group still apply, but the network stays reachable and files readable by the grader's user stay
readable; the grader says so in its output). Probed once per process; ``AUTOGRADER_ISOLATION``
(``namespaces``, ``unshare`` or ``limits-only``) forces one.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import threading

from autograder.sandbox.slots import cgroup_controllers
from autograder.sandbox.view import NAMESPACE_OPTIONS


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
    """How the sandbox is confined here: ``bwrap`` (an allow-list view of the files,
    ``autograder.sandbox.view``), ``unshare`` (namespaces and a list of paths covered: bubblewrap is missing) or
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
        return ("namespaces (bubblewrap: the sandbox sees only the system's runtime, Python and the kit's child "
                f"modules; {common})")
    return (f"namespaces (unshare: known private paths covered, other files stay readable; install bubblewrap "
            f"(`make setup`) for an allow-list view; {common})")
