"""What a sandbox sees of the files: bubblewrap's allow-list view, or, without it, what is covered.

With bubblewrap (``bwrap_argv``) the sandbox sees, read-only, the system's runtime (/usr/bin,
/usr/lib*, their /bin, /lib* links, /etc/ld.so.cache and /etc/localtime, and a passwd/group of
its own), the Python it runs on (``interpreter_paths``), the kit's modules it needs
(``CHILD_MODULES``, or a command's own list, as files under ``KIT_ROOT``: never the repository,
its .git, the checks or the solutions), and read-write only its writable folder, at the same
path; its /tmp, /var/tmp and /dev/shm are its own, in memory and capped; /dev is minimal, /proc
its own. With ``unshare`` and no bubblewrap, the kit's repository is an allow-list still
(``unshare_kit_view``: only the modules the command runs, and the Python it runs on, come back
into it), and outside it the data folder and what the caller names are covered by empty folders
(``unshare_covering``: a list of known paths; anything else the grader's user can read elsewhere
on the machine stays readable).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Iterable, Sequence

from autograder.assignment import REPO_ROOT
from autograder.errors import SandboxError
from autograder.files import real_path
from autograder.sandbox.slots import UserSlot

KIT = Path(__file__).resolve().parent.parent  # the kit's modules, as the grader has them
LAUNCHER = "sandbox/child.py"  # the launcher's half of the sandbox, run as a file (see autograder.sandbox.child)

# The kit's modules the sandbox's child imports, as files of KIT relative to it: the only ones it
# can see (a package's __init__ comes with its modules). A module the child imports that is
# missing here fails the child with ImportError; a name listed here whose file is missing fails
# every sandbox at start, with a message naming it. tests/test_isolation.py checks this against
# what the child's modules import.
CHILD_MODULES = (
    "__init__",
    "assignment",
    "errors",
    "i18n",  # the messages the child writes, in the student's language (the catalogue comes compiled)
    "limits",
    "data/fashion_mnist",  # the set-up cell does `from autograder.data import load_fashion_mnist`
    "data/inputs",
    "data/reference",
    "submission/cells",
    "submission/notebook",
    "submission/paths",  # notebook imports it; the child reads nothing through it
    "sandbox/artifacts",
    "sandbox/bounded_files",
    "sandbox/child",
    "sandbox/fit_client",
    "sandbox/frames",
    "sandbox/model_archive",
    "sandbox/model_config",
    "sandbox/probe",
)
KIT_ROOT = Path("/kit")  # where the sandbox finds them: KIT_ROOT/autograder/NAME.py, PYTHONPATH=KIT_ROOT

# What bubblewrap's sandbox sees of the system (read-only), when it exists here.
SYSTEM_FOLDERS = ("/usr/bin", "/usr/lib", "/usr/lib32", "/usr/lib64", "/usr/libx32")
SYSTEM_LINKS = ("/bin", "/lib", "/lib32", "/lib64", "/libx32")  # links into /usr on a merged-/usr system
SYSTEM_FILES = ("/etc/ld.so.cache", "/etc/localtime")
CPU_INFO = "/sys/devices/system/cpu"  # TensorFlow and the BLAS read the CPU topology here

NAMESPACE_OPTIONS = (
    "--unshare-net", "--unshare-pid", "--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try",
    "--hostname", "sandbox", "--die-with-parent",
    # The launcher is the namespace's first process (see autograder.sandbox.child.launch): it hands the sandbox's
    # peak memory on to the reaper, which bubblewrap's own first process would not.
    "--as-pid-1",
    # Root inside, with only what the launcher needs to give the sandbox's user its folder and to
    # become that user (which drops them all).
    "--cap-drop", "ALL", "--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID", "--cap-add", "CAP_CHOWN",
)


def launcher_file(method: str) -> str:
    """The launcher (``autograder.sandbox.child``) as the sandbox finds it: under KIT_ROOT in bubblewrap's view."""
    return str(KIT_ROOT / "autograder" / LAUNCHER) if method == "bwrap" else str(KIT / LAUNCHER)


def hidden_paths(extra: list[Path]) -> list[Path]:
    """What the child must not read: the solutions, the grader's checks (all of ``judge/``) and the
    tests, the data, and ``extra`` (the inputs)."""
    from autograder.data.fashion_mnist import find_data_dir

    paths = [REPO_ROOT / "solutions", REPO_ROOT / "tests", REPO_ROOT / "autograder" / "judge", *extra]
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
            + " listed in CHILD_MODULES (autograder/sandbox/view.py) " + ("is" if len(missing) == 1 else "are")
            + " missing; restore the file or remove the name from CHILD_MODULES"
        )
    return files


def unshare_covering(
    writable: Path, reachable: list[Path], modules: Sequence[str], hide: list[Path]
) -> tuple[list[Path], list[str]]:
    """Without bubblewrap: the paths to cover (``hidden_paths``), and what the sandbox's user must be
    able to enter (the Python it runs, the kit, its readable and writable paths)."""
    # Never cover what the command needs: its folders, the kit, the Python it runs on.
    needed = [writable.resolve(), KIT / LAUNCHER, *child_module_files(modules).values(),
              *(p.resolve() for p in reachable), Path(sys.prefix).resolve(), Path(sys.executable).resolve()]
    covered = [p for p in hidden_paths(hide) if not any(n == p or p in n.parents for n in needed)]
    reach = sorted(
        {str(Path(sys.base_prefix).resolve()), str(Path(sys.prefix).resolve()), str(REPO_ROOT),
         *(str(p.resolve()) for p in reachable)}
    )
    return covered, reach


def unshare_kit_view(writable: Path, reachable: list[Path], also_writable: list[Path], modules: Sequence[str]) -> dict:
    """Without bubblewrap, the kit's side as an allow-list all the same: the folder the kit lives in
    (its repository: .git, builds, caches, notes; the package alone where the kit is installed in a
    packages folder) is covered, and only what the command needs inside it comes back: the
    launcher, the command's modules, the Python it runs on, its own folders, and the links on the
    way to them (``autograder.sandbox.child.allow_only``)."""
    packages = {Path(entry).resolve() for entry in sys.path if Path(entry or ".").name in PACKAGE_FOLDERS}
    root = KIT if REPO_ROOT in packages else REPO_ROOT
    # The ways the command takes as it was given them (a link in the repository included: a .venv
    # that links elsewhere), and where they lead.
    interpreter = [*interpreter_paths(), Path(sys.executable).absolute(), Path(sys.prefix).absolute()]
    if any(path == root for path in interpreter):  # a virtualenv made in the repository's own folder
        interpreter += [root / name for name in VIRTUALENV_ENTRIES]
    needed = [KIT / LAUNCHER, *child_module_files(modules).values(), *interpreter, *reachable]
    keep, links = ways_into(root, needed, writable=[writable, *also_writable])
    return {"root": str(root), "keep": keep, "links": links}


PACKAGE_FOLDERS = ("site-packages", "dist-packages")
VIRTUALENV_ENTRIES = ("bin", "include", "lib", "lib64", "pyvenv.cfg")
MAX_LINKS_FOLLOWED = 64


def ways_into(root: Path, paths: list[Path], writable: list[Path]) -> tuple[list[list], list[list]]:
    """Of ``paths`` (and ``writable``), those inside ``root``: the files and folders to mount back
    (``[path, writable]``), and the links on the way to them to make again (``[link, target]``),
    each link followed to where it leads, within bounds."""
    writable = {Path(os.path.abspath(path)) for path in writable}
    todo = [Path(os.path.abspath(path)) for path in [*paths, *writable]]
    keep: dict[Path, bool] = {}
    links: dict[Path, str] = {}
    seen: set[Path] = set()
    for _ in range(MAX_LINKS_FOLLOWED + len(todo)):
        if not todo:
            break
        path = todo.pop()
        if root not in path.parents or path in seen:  # a loop of links ends here
            continue
        seen.add(path)
        walked = root
        for part in path.relative_to(root).parts:
            walked = walked / part
            if walked.is_symlink():
                links[walked] = os.readlink(walked)
                todo.append(Path(os.path.realpath(walked)) / path.relative_to(walked))
                break
        else:
            if os.path.lexists(path):
                keep[path] = keep.get(path, False) or path in writable
    return sorted([str(p), w] for p, w in keep.items()), sorted([str(p), t] for p, t in links.items())


def _covers(bound: list[Path], hidden: Iterable[Path], needed: list[Path]) -> list[Path]:
    """The hidden paths bubblewrap's view would still show (inside a folder bound for the
    interpreter, such as the data under /usr/share), but none that holds what the sandbox needs."""
    found = set()
    for path in filter(None, map(real_path, hidden)):  # one a student's link loop now hides itself
        shown = any(b == path or b in path.parents for b in bound)
        if shown and not any(n == path or path in n.parents for n in needed):
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


def bwrap_argv(
    program: str, *, slot: UserSlot | None, writable: Path, readable: list[Path], modules: dict[str, Path],
    temporary_bytes: int, hide: Iterable[Path], cap: int | None, also_writable: list[Path] = (),
) -> tuple[list[str], list[Path]]:
    """bubblewrap's command line for the view above (``cap``: the writable folder is a tmpfs of that
    size), and the hidden paths it covers inside the folders it binds."""
    view = _View()
    bound = _system_view(view, slot, temporary_bytes)
    for name, path in modules.items():
        view.add("--ro-bind", str(path), target=str(KIT_ROOT / "autograder" / f"{name}.py"))
    for path in [*interpreter_paths(), *readable]:
        view.add("--ro-bind", str(path), target=str(path), tree=path.is_dir())
        bound.append(path)
    _writable_view(view, writable, cap, also_writable)
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


def _system_view(view: _View, slot: UserSlot | None, temporary_bytes: int) -> list[Path]:
    """The system's runtime, /proc, /dev, the temporary folders and the slot's passwd files; the
    folders bound from the machine."""
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
    return bound


def _writable_view(view: _View, writable: Path, cap: int | None, also_writable: list[Path]) -> None:
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
