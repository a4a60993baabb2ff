"""The sandbox's isolation: what a submission can read of the machine, and what it shares with the
sandboxes beside it.

The slow tests grade real notebooks, each the unfilled student notebook with its ``normalize``
cell replaced by an attack that reports what it got through the message of the ``predict_labels``
check (as tests/attacks/ do). The others run small commands through ``confined``, the one
mechanism the child and the trainer share.
"""

from __future__ import annotations

import ast
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pytest

from autograder.assignment import REPO_ROOT, SOURCE_NOTEBOOK
from autograder.errors import SandboxError
from autograder.limits import Limits
from autograder.sandbox import confine, method, slots, view

SUBMISSIONS = Path(__file__).parent / "submissions"
LIMITS = Limits(submission_seconds=180, cell_seconds=60, training_seconds=60)

needs_isolation = pytest.mark.skipif(
    os.geteuid() != 0, reason="full isolation (namespaces, a user per sandbox, cgroups) needs the grader to run as root"
)
needs_memory_group = pytest.mark.skipif(
    "memory" not in slots.cgroup_controllers(), reason="the machine gives the grader no memory cgroup"
)
needs_bwrap = pytest.mark.skipif(
    method.bwrap_program() is None, reason="bubblewrap is not installed (`make setup` installs it as root)"
)


def attack_notebook(path: Path, normalize: str, predict_labels: str | None = None) -> Path:
    """The unfilled student notebook with the normalize cell replaced by ``normalize``; with
    ``predict_labels`` the function reports that expression's value as its error."""
    nb = json.loads((SUBMISSIONS / "unfilled_stubs.ipynb").read_text())
    for cell in nb["cells"]:
        grade_id = cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")
        if grade_id == "normalize":
            cell["source"] = normalize
        elif grade_id == "predict_labels" and predict_labels:
            cell["source"] = f"def predict_labels(model, images):\n    raise ValueError({predict_labels})\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(nb))
    return path


def check_message(report, check_id: str) -> str:
    return next(c.message for c in report.checks if c.id == check_id)


def public_folder(parent: str, prefix: str) -> Path:
    """A folder as an instructor's course would be: readable by every user of the machine."""
    folder = Path(tempfile.mkdtemp(prefix=prefix, dir=parent))
    os.chmod(folder, 0o755)
    return folder


# --- what the child imports is what it can see --------------------------------------------------------


def module_names(dotted: str) -> set[str]:
    """The files, as CHILD_MODULES names them, that importing ``autograder.X.Y`` runs: the packages'
    ``__init__`` on the way, then the module (or the package's ``__init__``)."""
    parts = dotted.split(".")[1:]
    names = {"__init__", *("/".join([*parts[:end], "__init__"]) for end in range(1, len(parts)))}
    path = "/".join(parts)
    return names | {path if (view.KIT / f"{path}.py").is_file() else f"{path}/__init__"}


def kit_imports(name: str) -> set[str]:
    """The kit's modules that ``autograder/NAME.py`` imports, anywhere in it."""
    tree = ast.parse((view.KIT / f"{name}.py").read_text())
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "autograder":
            found |= module_names(node.module)
            for alias in node.names:  # `from autograder.sandbox import frames` imports a module too
                inner = f"{node.module}.{alias.name}"
                path = "/".join(inner.split(".")[1:])
                if (view.KIT / f"{path}.py").is_file() or (view.KIT / path / "__init__.py").is_file():
                    found |= module_names(inner)
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("autograder."):
                    found |= module_names(alias.name)
    return found - {"/__init__"}


GRADERS_HALF = {"sandbox/confine", "sandbox/launch", "sandbox/method", "sandbox/slots", "sandbox/view"}


def test_child_modules_hold_every_module_the_child_imports_and_never_the_checks():
    files = view.child_module_files()
    assert not [name for name in files if name.startswith("judge/")] and not GRADERS_HALF & set(files)
    for name in sorted(files):
        missing = kit_imports(name) - set(files)
        assert not missing, (
            f"autograder/{name}.py imports {sorted(missing)}, which the sandbox's child cannot see: add the "
            "name to CHILD_MODULES in autograder/sandbox/view.py (never the judge's modules, nor the grader's "
            "half of the sandbox)"
        )


def imported_from(start: set[str]) -> set[str]:
    """``start`` and every kit module they import, and those import, to the end."""
    found, todo = set(), list(start)
    while todo:
        name = todo.pop()
        if name not in found:
            found.add(name)
            todo += kit_imports(name) - found
    return found


def test_the_trainer_sees_exactly_the_modules_it_imports():
    from autograder.trainer.desk import TRAINER_MODULES

    # The launcher runs as a file and imports nothing of the kit before it hands over to the command
    # (its child's half, which imports the probes, never runs in the trainer's sandbox).
    launcher = ast.parse((view.KIT / view.LAUNCHER).read_text())
    top_level = [node.module for node in launcher.body if isinstance(node, ast.ImportFrom)]
    assert not [module for module in top_level if module.startswith("autograder")]
    needed = imported_from({"__init__", "trainer/service"}) | {"sandbox/child"}
    packages = {name for name in needed if name.endswith("/__init__")}  # each comes with its modules
    assert set(TRAINER_MODULES) == needed - packages, "TRAINER_MODULES in autograder/trainer/desk.py"
    # A kept training's key holds the digest of the trainer's own code: all of it (autograder.trainer.cache).
    from autograder.trainer.cache import TRAINER_CODE

    assert {f"trainer/{name.removesuffix('.py')}" for name in TRAINER_CODE} == {
        name for name in TRAINER_MODULES if name.startswith("trainer/")
    }


def test_a_listed_module_whose_file_is_missing_is_a_clear_error():
    with pytest.raises(SandboxError, match=r"autograder/fit_service\.py listed in CHILD_MODULES .* missing"):
        view.child_module_files((*view.CHILD_MODULES, "fit_service"))


def test_what_must_stay_hidden_is_covered_where_a_bound_folder_would_show_it():
    bound = [Path("/usr"), Path("/opt/venv")]
    hidden = [Path("/usr/share/datasets/fashion-mnist"), Path("/opt/venv/lib/site-packages/autograder"),
              Path("/srv/course/solutions"), Path("/opt/venv")]
    needed = [Path("/opt/venv"), Path("/tmp/scratch")]
    # Not the data's folder outside the view, nor the interpreter itself, which the sandbox needs.
    assert view._covers(bound, hidden, needed) == [
        Path("/opt/venv/lib/site-packages/autograder"), Path("/usr/share/datasets/fashion-mnist"),
    ]


# --- confined: the mechanism, command by command --------------------------------------------------------


def run_confined(
    code: str, folder: Path, limits: Limits = Limits(), **options
) -> tuple[subprocess.CompletedProcess, dict]:
    with confine.confined([sys.executable, "-c", code], writable=folder, limits=limits, **options) as box:
        done = subprocess.run(
            box.argv, env=box.env, cwd=box.cwd, pass_fds=box.pass_fds, preexec_fn=box.preexec_fn, capture_output=True,
            text=True, start_new_session=True, timeout=120,
        )
        done.returncode = box.exit_status(done.returncode)
    return done, box.details


@pytest.fixture
def scratch():
    from autograder.sandbox.scratch import new_folder

    folder = new_folder("sandbox")
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


VIEW = r'''
import glob, json, os, socket, sys
seen = {
    "uid": os.getuid(), "root": sorted(os.listdir("/")), "etc": sorted(os.listdir("/etc")),
    "kit": sorted(os.path.relpath(os.path.join(folder, name), "/kit/autograder")
                  for folder, _, names in os.walk("/kit/autograder") for name in names),
    "cwd": os.getcwd(), "home": os.environ["HOME"],
    "tmp": sorted(os.listdir("/tmp")), "ipc": os.readlink("/proc/self/ns/ipc"), "net": os.readlink("/proc/self/ns/net"),
    "processes": sorted(int(p) for p in os.listdir("/proc") if p.isdigit()),
}
readable = {}
for path in json.loads(sys.argv[1]):
    try:
        readable[path] = bool(os.listdir(path)) if os.path.isdir(path) else bool(open(path, "rb").read(1))
    except OSError:
        readable[path] = False
seen["readable"] = readable
try:
    with socket.socket(socket.AF_UNIX) as connection:
        connection.connect("trainer.sock")
        seen["socket"] = connection.recv(100).decode()
except OSError as error:
    seen["socket"] = repr(error)
try:
    with open("inputs/train_images.npy", "r+b") as handle:
        handle.write(b"x")
    seen["inputs"] = "WRITTEN"
except OSError as error:
    seen["inputs"] = type(error).__name__
try:
    import autograder.judge.checks
    seen["checks"] = "IMPORTED"
except ImportError:
    seen["checks"] = "not found"
print(json.dumps(seen))
'''


@needs_isolation
@needs_bwrap
def test_the_sandbox_sees_an_allow_list_and_reaches_the_grader_only_through_its_scratch_folder(scratch, real_data_dir):
    (scratch / "inputs").mkdir()
    (scratch / "inputs" / "train_images.npy").write_bytes(b"\x93NUMPY")
    os.chmod(scratch / "inputs" / "train_images.npy", 0o444)
    server = socket.socket(socket.AF_UNIX)  # as the grader's training desk serves the child
    server.bind(str(scratch / "trainer.sock"))
    server.listen(1)

    def answer():
        connection, _ = server.accept()
        connection.sendall(b"the trainer answers")
        connection.close()

    threading.Thread(target=answer, daemon=True).start()
    secrets = [str(path) for path in (
        REPO_ROOT / ".git", REPO_ROOT / "autograder" / "judge", REPO_ROOT / "solutions", SOURCE_NOTEBOOK,
        REPO_ROOT / "autograder" / "batch", Path(real_data_dir), Path("/root/.bashrc"), Path("/root/.cache"),
        Path("/etc/shadow"), Path("/etc/hostname"), Path("/home"), Path("/opt"), Path("/srv"), Path("/var/lib"),
    ) if path.exists()]
    code = f"import sys; sys.argv[1:] = [{json.dumps(json.dumps(secrets))}]\n" + VIEW
    done, details = run_confined(code, scratch, scratch_bytes=64 * 2**20)
    server.close()
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout)
    assert details["method"] == "bwrap" and details["files"] == "allow-list" and details["network"] == "none"
    assert slots.UID_BASE <= seen["uid"] == details["user"] < slots.UID_BASE + slots.UID_SLOTS
    assert not any(seen["readable"].values()), seen["readable"]
    assert seen["kit"] == sorted(f"{name}.py" for name in view.child_module_files())
    assert seen["checks"] == "not found"
    assert set(seen["etc"]) <= {"ld.so.cache", "localtime", "passwd", "group", "nsswitch.conf"}
    assert set(seen["root"]) <= {"bin", "dev", "etc", "kit", "lib", "lib32", "lib64", "libx32", "proc", "sys", "tmp",
                                 "usr", "var", *(p.parts[1] for p in view.interpreter_paths())}
    assert seen["cwd"] == seen["home"] == str(scratch)  # at the same path as the grader's
    if scratch.parent == Path("/tmp"):
        # No other grader's, user's or sandbox's temporary files; only the way to the Python it runs,
        # when that lives under /tmp (a fresh clone there, with its virtualenv).
        python = {p.relative_to("/tmp").parts[0] for p in view.interpreter_paths() if Path("/tmp") in p.parents}
        assert set(seen["tmp"]) == {scratch.name, *python}
    assert seen["socket"] == "the trainer answers"
    assert seen["inputs"] in ("PermissionError", "OSError")
    assert seen["ipc"] != os.readlink("/proc/self/ns/ipc") and seen["net"] != os.readlink("/proc/self/ns/net")
    assert seen["processes"] == [1, 2]  # its own PID namespace: the launcher and itself alone


@needs_isolation
@needs_bwrap
def test_sandboxes_side_by_side_get_users_and_cgroups_of_their_own(tmp_path):
    folders = [tmp_path / "one", tmp_path / "two"]
    for folder in folders:
        folder.mkdir()
    limits = Limits(processes=300, memory_bytes=3 * 1024**3)
    code = "import os; print(os.getuid())"
    with confine.confined([sys.executable, "-c", code], writable=folders[0], limits=limits) as one, \
            confine.confined([sys.executable, "-c", code], writable=folders[1], limits=limits) as two:
        assert one.details["user"] != two.details["user"]
        for box in (one, two):
            groups = box.cgroup.paths
            if "pids" in groups:
                assert (groups["pids"] / "pids.max").read_text().strip() == str(300 + slots.PROCESS_MARGIN)
            if "memory" in groups:
                assert int((groups["memory"] / "memory.limit_in_bytes").read_text()) == 3 * 1024**3
            if "cpu" in groups:  # one share beside the machine's other sessions, not a share of one
                assert (groups["cpu"] / "cpu.shares").read_text().strip() == str(slots.CPU_SHARES)
                assert groups["cpu"].parent == slots.CGROUP_V1 / "cpu"
        paths = [path for box in (one, two) for path in box.cgroup.paths.values()]
    assert paths and not any(path.exists() for path in paths), "the groups go with their sandboxes"


@needs_isolation
@needs_bwrap
def test_what_a_sandbox_leaves_running_is_killed_and_its_exit_reads_as_the_commands(tmp_path):
    code = (
        "import os, signal, subprocess\n"
        "subprocess.Popen(['sleep', '300'], start_new_session=True)\n"  # leaves the process group
        "os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    done, details = run_confined(code, tmp_path)
    assert done.returncode == -9  # the sandbox's 128 + 9, read as the command's own
    assert slots.processes_of(details["user"]) == []


@needs_isolation
@needs_bwrap
def test_the_scratch_folder_is_capped_in_memory_of_its_own_and_only_its_artifacts_come_back(scratch):
    (scratch / "submission.ipynb").write_text("{}")
    code = (
        "import os\n"
        "mounts = open('/proc/self/mountinfo').read()\n"
        "os.makedirs('artifacts/arrays')\n"
        "open('artifacts/values.json', 'w').write('{}')\n"
        "os.symlink('/etc/shadow', 'artifacts/arrays/linked.npy')\n"
        "open('artifacts/arrays/sparse.npy', 'wb').close()\n"
        "os.truncate('artifacts/arrays/sparse.npy', 2**30)\n"  # 1 GiB that takes no room
        "open('notes.txt', 'w').write('kept inside')\n"
        "try:\n"
        "    open('submission.ipynb', 'w').write('rewritten')\n"
        "    print('REWRITTEN')\n"
        "except OSError as error:\n"
        "    print('read-only', error.errno)\n"
        "try:\n"
        "    with open('big', 'wb') as handle:\n"
        "        for _ in range(40):\n"
        "            handle.write(bytes(2**20))\n"
        "    print('WROTE 40 MiB')\n"
        "except OSError as error:\n"
        "    print('errno', error.errno)\n"
    )
    grader_mounts = []
    with confine.confined([sys.executable, "-c", code], writable=scratch, limits=Limits(),
                          scratch_bytes=16 * 2**20, hand_back=("artifacts",)) as box:
        child = subprocess.Popen(box.argv, env=box.env, cwd=box.cwd, pass_fds=box.pass_fds, preexec_fn=box.preexec_fn,
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
        while child.poll() is None:
            mounts = Path("/proc/self/mountinfo").read_text().splitlines()
            grader_mounts += [line for line in mounts if str(scratch) in line]
            time.sleep(0.05)
        stdout, stderr = child.communicate()
        assert box.exit_status(child.returncode) == 0, stderr
        assert box.details["scratch_bytes"] == 16 * 2**20
    assert stdout.split() == ["read-only", "30", "errno", "28"]  # EROFS, then ENOSPC: no space left in it
    assert grader_mounts == []  # the tmpfs was the sandbox's own: nothing to unmount if the grader dies
    assert (scratch / "artifacts" / "values.json").read_text() == "{}"  # handed back to the folder on disk
    assert not os.path.lexists(scratch / "artifacts" / "arrays" / "linked.npy")  # never a link the child made
    assert not (scratch / "artifacts" / "arrays" / "sparse.npy").exists()  # no more out than the cap
    assert sorted(os.listdir(scratch)) == ["artifacts", "submission.ipynb"]  # nothing else comes out
    assert (scratch / "submission.ipynb").read_text() == "{}"
    assert os.stat(scratch).st_uid == 0  # root's again: the next sandbox of that user cannot enter


@needs_isolation
def test_the_fallback_without_bubblewrap_sees_of_the_kit_s_repository_only_the_modules_it_runs(scratch, monkeypatch):
    monkeypatch.setattr(method, "_isolation", "namespaces")
    monkeypatch.setattr(method, "_method", "unshare")
    # Whatever the repository holds beside the kit: its history, a build, compiled checks, notes.
    (REPO_ROOT / "build").mkdir(exist_ok=True)
    secret = REPO_ROOT / "build" / "fallback-secret.txt"
    secret.write_text("the instructor's notes")
    compiled = REPO_ROOT / "autograder" / "judge" / "__pycache__"
    compiled.mkdir(exist_ok=True)
    (compiled / "fallback_probe.cpython-311.pyc").write_bytes(b"compiled checks")
    code = (
        "import os, sys\n"
        "seen = []\n"
        "for folder, dirs, files in os.walk(%r):\n"
        "    dirs[:] = [d for d in dirs if os.path.join(folder, d) != sys.prefix]\n"
        "    seen += [os.path.relpath(os.path.join(folder, name), %r) for name in files]\n"
        "print(' '.join(sorted(seen)))\n"
        "import autograder.sandbox.probe\n"  # what the child runs still imports
    ) % (str(REPO_ROOT), str(REPO_ROOT))
    try:
        done, details = run_confined(code, scratch)
    finally:
        secret.unlink()
        (compiled / "fallback_probe.cpython-311.pyc").unlink()
    assert done.returncode == 0, done.stderr
    assert details["method"] == "unshare"
    allowed = {str(path.relative_to(REPO_ROOT)) for path in view.child_module_files().values()}
    assert set(done.stdout.split()) == allowed, "the fallback shows more of the repository than the kit's modules"


@needs_isolation
def test_the_fallback_without_bubblewrap_gives_the_same_user_socket_and_capped_folder(scratch, monkeypatch):
    monkeypatch.setattr(method, "_isolation", "namespaces")
    monkeypatch.setattr(method, "_method", "unshare")
    (scratch / "inputs").mkdir()
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(scratch / "trainer.sock"))
    server.listen(1)

    def answer():
        connection, _ = server.accept()
        with connection:
            connection.sendall(b"answer")

    threading.Thread(target=answer, daemon=True).start()
    code = (
        "import os, socket\n"
        "connection = socket.socket(socket.AF_UNIX)\n"
        "connection.connect('trainer.sock')\n"
        "try:\n"
        "    judge = len(os.listdir(%r))\n"
        "except OSError as error:\n"
        "    judge = type(error).__name__\n"
        "print(os.getuid(), connection.recv(10).decode(), judge)\n"
        "os.mkdir('artifacts')\n"
        "open('artifacts/values.json', 'w').write('{}')\n"
        "try:\n"
        "    open('big', 'wb').write(bytes(40 * 2**20))\n"
        "except OSError as error:\n"
        "    print('errno', error.errno)\n"
    ) % str(REPO_ROOT / "autograder" / "judge")
    done, details = run_confined(code, scratch, scratch_bytes=16 * 2**20, hand_back=("artifacts",))
    server.close()
    assert done.returncode == 0, done.stderr
    assert details["method"] == "unshare" and details["files"] == "hide-list"
    uid, answer, judge_seen, *rest = done.stdout.split()
    assert int(uid) == details["user"] and answer == "answer" and rest == ["errno", "28"]
    assert judge_seen == "FileNotFoundError"  # the grader's checks: not in the kit's view at all
    assert (scratch / "artifacts" / "values.json").read_text() == "{}"


@needs_isolation
@needs_bwrap
def test_a_kit_command_such_as_the_trainer_runs_confined_with_its_own_modules_folders_and_pipe(tmp_path):
    home, inputs, cache = tmp_path / "home", tmp_path / "inputs", tmp_path / "cache"
    for folder in (home, inputs, cache):
        folder.mkdir()
    (inputs / "train_images.npy").write_bytes(b"images")
    os.chmod(cache, 0o1777)  # shared by the trainers of a batch, each a user of its own
    code = (
        "import os, sys\n"
        "import autograder.sandbox.frames, autograder.trainer_like\n"
        "reply = int(sys.argv[1])\n"
        "os.write(reply, open(sys.argv[2], 'rb').read() + b' ' + os.environ['PYTHONPATH'].encode())\n"
        "open(os.path.join(sys.argv[3], 'trained.npz'), 'w').write('weights')\n"
        "try:\n"
        "    import autograder.sandbox.probe\n"
        "    os.write(reply, b' PROBE')\n"
        "except ImportError:\n"
        "    pass\n"
    )
    reply_read, reply_write = os.pipe()
    modules = ("__init__", "errors", "sandbox/frames", "sandbox/child")
    original = view.KIT
    try:
        with pytest.raises(SandboxError, match="trainer_like"):
            with confine.confined([sys.executable, "-c", code], writable=home, limits=Limits(),
                                  modules=(*modules, "trainer_like")):
                pass
        # A module of its own (beside the kit's: here, a copy of the kit with one more file).
        kit = tmp_path / "kit"
        shutil.copytree(original, kit, ignore=shutil.ignore_patterns("__pycache__"))
        (kit / "trainer_like.py").write_text("TRAINER = True\n")
        view.KIT = kit
        argv = [sys.executable, "-c", code, str(reply_write), str(inputs / "train_images.npy"), str(cache)]
        with confine.confined(argv, writable=home, readable=[inputs], also_writable=[cache], limits=Limits(),
                              modules=(*modules, "trainer_like"), env={"PYTHONPATH": "/somewhere/else"}) as box:
            trainer = subprocess.run(box.argv, env=box.env, cwd=box.cwd, pass_fds=(reply_write, *box.pass_fds),
                                     preexec_fn=box.preexec_fn, capture_output=True, text=True, timeout=60)
    finally:
        view.KIT = original
        os.close(reply_write)
    answer = os.read(reply_read, 1000)
    os.close(reply_read)
    assert trainer.returncode == 0, trainer.stderr
    assert answer == b"images /kit"  # its inputs, its modules only (never probe, not listed), its pipe
    assert (cache / "trained.npz").read_text() == "weights"
    assert box.details["method"] == "bwrap" and box.details["network"] == "none"


# --- whole submissions -------------------------------------------------------------------------------------

SNOOP = '''
import os
TARGETS = {targets!r}
LEAKED = []
for name, path in TARGETS.items():
    try:
        if os.path.isdir(path):
            if os.listdir(path):
                LEAKED.append(name)
        elif open(path, "rb").read(64):
            LEAKED.append(name)
    except OSError:
        pass
REPORT = f"ipc {{os.readlink('/proc/self/ns/ipc')}}, probed {{len(TARGETS)}} targets, leaked {{sorted(LEAKED)}}"
def normalize(images):
    raise NotImplementedError()
'''

FILLS_THE_DISK = '''
import os
OUTCOME = []
for name, path, mebibytes in (("cwd", "big.bin", 300), ("tmp", "/tmp/big.bin", 100)):
    try:
        with open(path, "wb") as handle:
            for _ in range(mebibytes):
                handle.write(bytes(2**20))
        OUTCOME.append(f"{name} wrote {mebibytes} MiB")
    except OSError as error:
        OUTCOME.append(f"{name} {type(error).__name__} errno {error.errno}")
    finally:
        try:
            os.remove(path)
        except OSError:
            pass
REPORT = "; ".join(OUTCOME)
def normalize(images):
    raise NotImplementedError()
'''


@pytest.fixture(scope="module")
def course(real_data_dir):
    """A course as an instructor keeps it: a git repository holding the solution, the submissions in
    it, a gradebook and earlier results beside them, the data copied elsewhere, and another copy
    of the solution under /opt. All readable by every user of the machine, as such files often are."""
    folders = [public_folder("/srv", "autograder-isolation-"), public_folder("/opt", "autograder-isolation-")]
    root, elsewhere = folders
    repo = root / "course"
    (repo / "solutions" / "fashion_mnist").mkdir(parents=True)
    shutil.copy(SOURCE_NOTEBOOK, repo / "solutions" / "fashion_mnist" / SOURCE_NOTEBOOK.name)
    (repo / "gradebook.db").write_bytes(b"SQLite format 3\0 grades of every student")
    (repo / "results-2024").mkdir()
    (repo / "results-2024" / "alice.json").write_text('{"score": 100}')
    git = ["git", "-C", str(repo), "-c", "user.name=Instructor", "-c", "user.email=instructor@example.org"]
    subprocess.run([*git[:3], "init", "-q"], check=True)
    subprocess.run([*git, "add", "."], check=True)
    subprocess.run([*git, "commit", "-q", "-m", "the course"], check=True)
    data = root / "data"
    data.mkdir()
    for file in Path(real_data_dir).glob("*.gz"):
        shutil.copy(file, data / file.name)
    (elsewhere / "solutions").mkdir()
    shutil.copy(SOURCE_NOTEBOOK, elsewhere / "solutions" / SOURCE_NOTEBOOK.name)
    judge = REPO_ROOT / "autograder" / "judge"
    cached = list((judge / "__pycache__").glob("*.pyc"))
    if not cached:
        import py_compile

        for module in judge.glob("*.py"):
            py_compile.compile(str(module), doraise=True)
    for parent, dirs, files in os.walk(root):  # git makes some of its files private; an instructor's may not be
        for name in dirs + files:
            os.chmod(os.path.join(parent, name), 0o755 if name in dirs else 0o644)
    targets = {
        "a: the course's .git": str(repo / ".git"),
        "a: .git/HEAD": str(repo / ".git" / "HEAD"),
        "a: the course's solution": str(repo / "solutions" / "fashion_mnist" / SOURCE_NOTEBOOK.name),
        "b: the data folder": str(data),
        "b: the test labels": str(data / "t10k-labels-idx1-ubyte.gz"),
        "c: another copy of the solution": str(elsewhere / "solutions" / SOURCE_NOTEBOOK.name),
        "c: its folder": str(elsewhere / "solutions"),
        "d: the results folder": str(repo / "autograder-results"),
        "d: earlier results": str(repo / "results-2024" / "alice.json"),
        "d: the gradebook": str(repo / "gradebook.db"),
        "e: the kit's compiled checks": str(judge / "__pycache__"),
        "e: the kit's checks": str(judge),
        "e: the kit's .git": str(REPO_ROOT / ".git"),
        "e: the kit's solution": str(SOURCE_NOTEBOOK),
    }
    yield {"repo": repo, "data": data, "targets": targets}
    for folder in folders:
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="module")
def snooped(course):
    """One batch of two, side by side: a notebook inside the course repository reading everything
    above, and one filling its scratch folder and /tmp past their caps."""
    from autograder.batch.local import grade_notebooks

    repo = course["repo"]
    snoop = attack_notebook(repo / "submitted" / "alice" / "fashion_mnist_classifier.ipynb",
                            SNOOP.format(targets=course["targets"]), "REPORT")
    filler = attack_notebook(repo / "submitted" / "bob" / "fashion_mnist_classifier.ipynb", FILLS_THE_DISK, "REPORT")
    (repo / "autograder-results").mkdir()
    (repo / "autograder-results" / "carol.json").write_text('{"score": 100}')
    limits = Limits(submission_seconds=LIMITS.submission_seconds, cell_seconds=LIMITS.cell_seconds,
                    training_seconds=LIMITS.training_seconds, scratch_bytes=256 * 2**20, temporary_bytes=64 * 2**20)
    started = time.monotonic()
    reports = grade_notebooks([snoop, filler], data_dir=course["data"], limits=limits, workers=2,
                              results=repo / "autograder-results")
    return {"snoop": reports[0], "filler": reports[1], "seconds": time.monotonic() - started}


@pytest.mark.slow
@needs_isolation
@needs_bwrap
def test_a_submission_reads_nothing_of_the_course_the_data_the_results_or_the_kit(snooped, course):
    message = check_message(snooped["snoop"], "predict_labels")
    assert f"probed {len(course['targets'])} targets" in message, message
    assert "leaked []" in message, message


@pytest.mark.slow
@needs_isolation
@needs_bwrap
def test_a_submission_has_an_ipc_namespace_of_its_own(snooped):
    message = check_message(snooped["snoop"], "predict_labels")
    assert "ipc ipc:[" in message and f"ipc {os.readlink('/proc/self/ns/ipc')}," not in message, message


@pytest.mark.slow
@needs_isolation
@needs_bwrap
def test_writing_past_the_scratch_caps_fails_in_the_submission_and_the_grader_goes_on(snooped):
    report = snooped["filler"]
    message = check_message(report, "predict_labels")
    assert "cwd OSError errno 28" in message and "tmp OSError errno 28" in message, message
    assert report.error is None and report.usage["sandbox_peak_memory_mib"] > 0


HOG = '''
import os, time
children = []
try:
    while len(children) < 5000:
        pid = os.fork()
        if pid == 0:
            time.sleep(20)
            os._exit(0)
        children.append(pid)
    STOPPED = "never stopped"
except OSError as error:
    STOPPED = f"stopped after {len(children)} processes: {type(error).__name__}"
for pid in children:
    os.waitpid(pid, 0)
def normalize(images):
    raise NotImplementedError()
'''

NEIGHBOUR = '''
import threading, time
for _ in range(7):  # over some 14 s, while the notebook beside it holds all the processes it may
    threads = [threading.Thread(target=time.sleep, args=(0.2,)) for _ in range(100)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    time.sleep(2)
def normalize(images):
    return images / 255.0
'''


@pytest.mark.slow
@needs_isolation
@needs_bwrap
def test_a_sandbox_holding_all_its_processes_leaves_its_neighbour_its_own(tmp_path, real_data_dir):
    from autograder.batch.local import grade_notebooks

    hog = attack_notebook(tmp_path / "hog" / "fashion_mnist_classifier.ipynb", HOG, "STOPPED")
    neighbour = attack_notebook(tmp_path / "neighbour" / "fashion_mnist_classifier.ipynb", NEIGHBOUR)
    hogged, beside = grade_notebooks([hog, neighbour], data_dir=real_data_dir, limits=LIMITS, workers=2)
    assert "stopped after" in check_message(hogged, "predict_labels"), check_message(hogged, "predict_labels")
    assert beside.score == 10, [(c.id, c.message) for c in beside.checks]
    assert next(c for c in beside.checks if c.id == "normalize").passed


@pytest.mark.slow
@needs_isolation
def test_the_fallback_grades_a_submission_that_trains_as_bubblewrap_does(real_data_dir, monkeypatch):
    """The child and the trainer each run with only their modules of the repository in view."""
    from autograder.batch.local import grade_notebooks

    monkeypatch.setattr(method, "_isolation", "namespaces")
    monkeypatch.setattr(method, "_method", "unshare")
    views = []
    monkeypatch.setattr(confine, "unshare_kit_view", lambda *a: views.append(a[3]) or view.unshare_kit_view(*a))
    submissions = Path(__file__).parent / "submissions"
    expected = json.loads((submissions / "ten_epochs_only.expected.json").read_text())
    report = grade_notebooks([submissions / "ten_epochs_only.ipynb"], data_dir=real_data_dir)[0]
    assert report.error is None and report.usage["trainings_run"] == 2  # the short check of epochs, then the 10
    assert sorted("trainer/service" in modules for modules in views) == [False, True]  # the child, the trainer
    assert report.score == expected["score"]
    failing = {check.id: check.message for check in report.checks if not check.passed}
    assert failing.keys() == expected["failing"].keys()
    assert all(expected["failing"][check] in message for check, message in failing.items())


# --- the fallback's allow-list of the kit's repository, piece by piece -------------------------------------


def test_the_fallback_covers_the_repository_even_inside_the_interpreter_s_folder(tmp_path, monkeypatch):
    """A checkout inside a virtualenv (`pip install -e git+...` puts it in <venv>/src/<name>) is
    still covered whole; only a kit installed in a packages folder narrows the cover to itself."""
    venv = tmp_path / "venv"
    repo = venv / "src" / "course"
    (repo / "autograder").mkdir(parents=True)
    packages = venv / "lib" / "python3.11" / "site-packages"
    packages.mkdir(parents=True)
    monkeypatch.setattr(view, "interpreter_paths", lambda: [venv])
    monkeypatch.setattr(sys, "path", [str(packages)])
    monkeypatch.setattr(view, "REPO_ROOT", repo)
    monkeypatch.setattr(view, "KIT", repo / "autograder")
    monkeypatch.setattr(view, "child_module_files", lambda modules: {})
    assert view.unshare_kit_view(tmp_path / "scratch", [], [], ())["root"] == str(repo)
    monkeypatch.setattr(view, "REPO_ROOT", packages)
    monkeypatch.setattr(view, "KIT", packages / "autograder")
    assert view.unshare_kit_view(tmp_path / "scratch", [], [], ())["root"] == str(packages / "autograder")


def test_the_ways_into_the_repository_follow_its_links_within_bounds(tmp_path):
    root, outside = tmp_path / "repo", tmp_path / "elsewhere"
    (root / "autograder").mkdir(parents=True)
    (root / "autograder" / "errors.py").write_text("")
    (outside / "bin").mkdir(parents=True)
    (root / ".venv").symlink_to("../elsewhere")  # a virtualenv kept outside the repository
    (root / "kit").symlink_to("autograder")  # a link within it
    (root / "loop").symlink_to("loop")
    keep, links = view.ways_into(
        root, [root / ".venv" / "bin" / "python", root / "kit" / "errors.py", root / "loop" / "x", root / "kit" / "x"],
        writable=[root / "scratch"],
    )
    assert keep == [[str(root / "autograder" / "errors.py"), False]]  # the scratch folder does not exist
    assert links == [[str(root / ".venv"), "../elsewhere"], [str(root / "kit"), "autograder"],
                     [str(root / "loop"), "loop"]]


@needs_isolation
def test_allow_only_shows_the_kept_paths_read_only_and_the_links_on_the_way(tmp_path):
    root = tmp_path / "repo"
    (root / "kept").mkdir(parents=True)
    (root / "kept" / "module.py").write_text("kept")
    (root / "deep" / "er").mkdir(parents=True)
    (root / "deep" / "er" / "file.txt").write_text("deep")
    (root / "secret.txt").write_text("secret")
    (tmp_path / "venv").mkdir()
    (tmp_path / "venv" / "python").write_text("python")
    (root / ".venv").symlink_to("../venv")
    code = (
        "import os, sys\n"
        "sys.path.insert(0, %r)\n"
        "from autograder.sandbox.child import allow_only\n"
        "root = %r\n"
        "kept = [[root + '/kept', False], [root + '/deep/er/file.txt', False]]\n"
        "allow_only(root, kept, [[root + '/.venv', '../venv']])\n"
        "print(sorted(os.listdir(root)), os.listdir(root + '/deep'), open(root + '/.venv/python').read())\n"
        "try:\n"
        "    open(root + '/kept/module.py', 'w')\n"
        "except OSError as error:\n"
        "    print(error.errno)\n"
    ) % (str(REPO_ROOT), str(root))
    done = subprocess.run(["unshare", "--mount", "--propagation", "private", sys.executable, "-c", code],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split("\n")[:2] == ["['.venv', 'deep', 'kept'] ['er'] python", "30"]  # EROFS
    assert (root / "secret.txt").read_text() == "secret"  # the grader's side is untouched


SPINNERS = '''
import os, signal, time
for _ in range(200):  # busy processes, within the process cap, for as long as the sandbox lives
    if os.fork() == 0:
        os.setsid()  # each a session, so each its own group where the kernel groups sessions (autogroup)
        while True:
            pass
signal.signal(signal.SIGALRM, signal.SIG_IGN)
while True:
    time.sleep(1)
'''


@pytest.mark.slow
@needs_isolation
@needs_bwrap
@pytest.mark.skipif("cpu" not in slots.cgroup_controllers(), reason="the machine gives the grader no cgroup v1 cpu")
def test_a_sandbox_running_hundreds_of_busy_processes_starves_no_neighbour_s_training(tmp_path, real_data_dir):
    """The scheduler shares the cores between processes, or between sessions where the kernel groups
    them (autogroup): 200 busy processes, each its own session, ran the honest neighbour past its limit
    to 0 points. Each sandbox and trainer is a cpu group of one share, within which sessions count
    for nothing."""
    from autograder.batch.local import grade_notebooks

    spinning = attack_notebook(tmp_path / "spinning" / "fashion_mnist_classifier.ipynb", SPINNERS)
    limits = Limits(submission_seconds=150, cell_seconds=60, training_seconds=120)
    hogged, beside = grade_notebooks([spinning, SUBMISSIONS / "passes_all.ipynb"], data_dir=real_data_dir,
                                     limits=limits, workers=2, reuse=False)
    assert beside.score == 100, [(c.id, c.message) for c in beside.checks if not c.passed]
    assert "time limit for one submission" in hogged.error, hogged.error  # spinning until its sandbox ended


def test_a_batch_s_memory_groups_add_up_to_the_machine_less_the_grader_s_own(monkeypatch):
    GIB = 2**30
    monkeypatch.setattr(slots, "cgroup_controllers", lambda: ["pids", "memory", "cpu"])
    monkeypatch.setattr(slots, "machine_memory_bytes", lambda: slots.MACHINE_RESERVE_BYTES + 20 * GIB)
    assert slots.memory_share(Limits(), 1) == (Limits(), None)  # two groups of 8 GiB fit in 20
    held, said = slots.memory_share(Limits(), 2)
    assert held.group_memory == 5 * GIB and held.memory_bytes == Limits().memory_bytes  # address space is not memory
    assert held.group_memory * 4 <= 20 * GIB and "held to 5.0 GiB" in said and "fewer workers" not in said
    assert slots.memory_share(Limits(memory_bytes=4 * GIB), 2) == (Limits(memory_bytes=4 * GIB), None)
    crowded, said = slots.memory_share(Limits(), 4)  # 2.5 GiB a group: below what the lesson needs
    assert crowded.group_memory == slots.GROUP_FLOOR_BYTES and "grade with fewer workers" in said
    # An instructor's limit below the floor is the limit, and said as it is.
    low, said = slots.memory_share(Limits(memory_bytes=3 * GIB), 8)
    assert low == Limits(memory_bytes=3 * GIB) and "held to" not in said and "fewer workers" in said
    alone, said = slots.memory_share(Limits(), 1, per_worker=1)  # unsandboxed: a trainer per worker
    assert alone == Limits() and said is None
    assert "larger machine" in slots.memory_share(Limits(), 1, machine=6 * GIB)[1]  # a Dask worker's limit
    # A few pages more or less between boots hold the groups the same: the results store keys the share.
    monkeypatch.setattr(slots, "machine_memory_bytes", lambda: slots.MACHINE_RESERVE_BYTES + 20 * GIB + 40960)
    assert slots.memory_share(Limits(), 2)[0] == held

    monkeypatch.setattr(slots, "cgroup_controllers", lambda: ["pids"])  # nothing would hold the share
    assert slots.memory_share(Limits(), 4) == (Limits(), None)


@needs_isolation
@needs_memory_group
def test_a_group_left_with_a_lower_memory_limit_gets_the_new_one(monkeypatch):
    """A grader killed outright leaves its groups; the next batch may hold them higher (fewer workers).
    The kernel refuses a memory limit above the memory-and-swap one, and the group was dropped: the
    sandbox ran with no memory cgroup at all."""
    small = Limits(group_memory_bytes=2**30)
    left = slots.SandboxCgroup("test-left-lower", small)  # never closed: as a killed grader leaves it
    assert "memory" in left.paths
    group = slots.SandboxCgroup("test-left-lower", Limits())
    try:
        assert "memory" in group.paths
        assert int((group.paths["memory"] / "memory.limit_in_bytes").read_text()) == Limits().memory_bytes
    finally:
        group.close()


@needs_isolation
@needs_memory_group
def test_a_group_that_will_not_take_its_share_is_made_afresh(tmp_path):
    """A left-over group holding memory it cannot give back (a file in memory its process left) refuses a
    lower limit; the group was dropped, and the sandbox ran with no memory group while the batch said
    each was held to its share (helper-81)."""
    held = Limits(group_memory_bytes=128 * 2**20)
    shm = Path("/dev/shm") / f"autograder-test-{os.getpid()}"
    left = slots.SandboxCgroup("test-will-not-take", Limits())  # never closed: as a killed grader leaves it
    writer = subprocess.run(["dd", "if=/dev/zero", f"of={shm}", "bs=1M", "count=200", "status=none"],
                            preexec_fn=left.enter)
    group = None
    try:
        assert writer.returncode == 0
        group = slots.SandboxCgroup("test-will-not-take", held)
        assert "memory" in group.paths
        assert int((group.paths["memory"] / "memory.limit_in_bytes").read_text()) == held.group_memory
    finally:
        shm.unlink(missing_ok=True)
        if group is not None:
            group.close()
        left.close()


@needs_isolation
@needs_memory_group
def test_what_a_group_holds_counts_its_files_in_memory_after_their_writer_is_gone():
    """A warm trainer is kept only while it leaves room under its group's share: where /tmp is in memory,
    the trainings it cached stay charged to its group, which its processes' resident memory does not show."""
    group = slots.SandboxCgroup("test-held", Limits())
    shm = Path("/dev/shm") / f"autograder-test-held-{os.getpid()}"
    try:
        subprocess.run(["dd", "if=/dev/zero", f"of={shm}", "bs=1M", "count=64", "status=none"], preexec_fn=group.enter,
                       check=True)
        assert group.held_bytes() >= 64 * 2**20
    finally:
        shm.unlink(missing_ok=True)
        group.close()


@needs_isolation
@needs_memory_group
def test_a_group_counts_only_the_kills_since_it_was_made():
    """A group left by a grader killed outright keeps its count of kills: the next submission in it was
    taken for one stopped at its share, and graded again alone for nothing (helper-83)."""
    small = Limits(group_memory_bytes=64 * 2**20)
    left = slots.SandboxCgroup("test-kills", small)  # never closed: as a killed grader leaves it
    hog = subprocess.run([sys.executable, "-c", "b = bytes([1]) * (256 * 2**20)"], preexec_fn=left.enter)
    group = slots.SandboxCgroup("test-kills", small)
    try:
        assert hog.returncode == -9 and left.oom_kills() == 1
        assert group.oom_kills() == 0
    finally:
        group.close()
        left.close()


def test_the_machine_s_memory_is_the_tightest_of_its_own_and_the_groups_the_sandboxes_sit_in(tmp_path, monkeypatch):
    total = slots.machine_memory_bytes()
    with open("/proc/meminfo") as handle:
        meminfo = next(int(line.split()[1]) * 1024 for line in handle if line.startswith("MemTotal:"))
    assert total is not None and 0 < total <= meminfo
    # In a container the hierarchy's root is the container's own group, whatever /proc/self/cgroup names.
    (tmp_path / "memory").mkdir()
    (tmp_path / "memory" / "memory.limit_in_bytes").write_text(f"{8 * 2**30}\n")
    monkeypatch.setattr(slots, "CGROUP_V1", tmp_path)
    assert slots.machine_memory_bytes() == min(8 * 2**30, meminfo)
    (tmp_path / "memory" / slots.CGROUP_FOLDER).mkdir()
    (tmp_path / "memory" / slots.CGROUP_FOLDER / "memory.limit_in_bytes").write_text(f"{6 * 2**30}\n")
    assert slots.machine_memory_bytes() == min(6 * 2**30, meminfo)


def test_a_result_is_kept_whatever_the_share_of_memory_it_was_graded_under():
    """A submission stopped at its share is graded again at the limit: no result depends on the share,
    so a rerun with other workers hands back what was graded (helper-81: --workers regraded the class)."""
    from autograder.batch.store import run_settings

    held = Limits(group_memory_bytes=5 * 2**30)
    assert run_settings(held, "bwrap") == run_settings(Limits(), "bwrap")
    assert run_settings(Limits(memory_bytes=8 * 2**30), "bwrap") == run_settings(Limits(), "bwrap")
    assert run_settings(Limits(memory_bytes=6 * 2**30), "bwrap") != run_settings(Limits(), "bwrap")


HOARDER = '''
import os, select, time
CHUNK = 256 * 2**20
read_end, write_end = os.pipe()
children = []
for _ in range(24):  # 6 GiB in all, each process small beside a trainer: the machine's killer would pass them over
    pid = os.fork()
    if pid == 0:
        held = bytes([1]) * CHUNK  # written, so resident
        os.write(write_end, b"+")
        time.sleep(60)
        os._exit(0)
    children.append(pid)
os.close(write_end)
HELD, deadline = 0, time.monotonic() + 40
while HELD < len(children) and time.monotonic() < deadline:
    if select.select([read_end], [], [], 1)[0]:
        got = os.read(read_end, 64)
        if not got:
            break
        HELD += len(got)
for pid in children:
    try:
        os.kill(pid, 9)
        os.waitpid(pid, 0)
    except OSError:
        pass
HELD = f"held {HELD * CHUNK // 2**20} MiB"
def normalize(images):
    return images / 255.0
'''


@pytest.mark.slow
@needs_isolation
@needs_bwrap
@needs_memory_group
def test_the_memory_a_batch_promises_its_sandboxes_fits_the_machine(tmp_path, real_data_dir, monkeypatch):
    """Each sandbox and each trainer may hold ``--memory-limit`` (8 GiB): two workers promise 32 GiB
    to a machine of 23. A submission that takes its 8 GiB in many small processes runs the machine out
    of memory, and the kernel's killer ends the largest process: an honest neighbour's trainer. A batch
    holds each memory cgroup to its share of the machine, less the grader's own: here, on a machine of
    4.5 GiB a group, the hoarder is stopped at 4.5 GiB and its neighbour is graded as ever."""
    from autograder.batch.local import grade_notebooks

    share = int(4.5 * 2**30)
    monkeypatch.setattr(slots, "machine_memory_bytes", lambda: slots.MACHINE_RESERVE_BYTES + 4 * share, raising=False)
    hoarder = attack_notebook(tmp_path / "hoarder" / "fashion_mnist_classifier.ipynb", HOARDER, "HELD")
    neighbour = attack_notebook(tmp_path / "neighbour" / "fashion_mnist_classifier.ipynb", NEIGHBOUR)
    hoarded, beside = grade_notebooks([hoarder, neighbour], data_dir=real_data_dir, limits=LIMITS, workers=2)
    # Stopped at its share beside its neighbour, then graded alone, at the limit (a grade never depends
    # on how many ran beside it), where its 6 GiB fit.
    assert hoarded.usage.get("alone_after_share_mib") == share // 2**20, hoarded.usage
    assert "held 6144 MiB" in check_message(hoarded, "predict_labels")
    assert beside.score == 10 and next(c for c in beside.checks if c.id == "normalize").passed
    assert "alone_after_share_mib" not in beside.usage


HEAVY = '''
held = bytes([1]) * int(4.3 * 2**30)  # several copies of the data in float64: above the share, well below the limit
del held
def normalize(images):
    return images / 255.0
'''


@pytest.mark.slow
@needs_isolation
@needs_bwrap
@needs_memory_group
def test_a_notebook_stopped_at_its_share_of_memory_is_graded_again_alone_at_the_full_limit(
        tmp_path, real_data_dir, monkeypatch):
    """A grade must not depend on how many workers ran: a notebook that holds more than its share of the
    machine (4 GiB a group at three workers here) but less than --memory-limit (8 GiB) was killed at
    --workers 3 and graded at --workers 1. It is graded again once nothing else runs, at the full limit."""
    from autograder.batch.local import grade_notebooks

    share = 4 * 2**30
    monkeypatch.setattr(slots, "machine_memory_bytes", lambda: slots.MACHINE_RESERVE_BYTES + 4 * share)
    heavy = attack_notebook(tmp_path / "heavy" / "fashion_mnist_classifier.ipynb", HEAVY)
    neighbour = attack_notebook(tmp_path / "neighbour" / "fashion_mnist_classifier.ipynb", NEIGHBOUR)
    reports = grade_notebooks([heavy, neighbour], data_dir=real_data_dir, limits=LIMITS, workers=2,
                              results=tmp_path / "results")
    for report in reports:
        assert report.error is None and report.score == 10, (report.error, [(c.id, c.message) for c in report.checks])
    assert reports[0].usage.get("alone_after_share_mib") == share // 2**20
    assert "alone_after_share_mib" not in reports[1].usage


def test_emptying_a_group_never_kills_a_process_that_left_it_and_took_a_listed_pid(tmp_path):
    from autograder.sandbox.slots import SandboxCgroup

    # A group whose process exited after the grader read its pid, the pid then reused by a bystander
    # outside the group: the first read lists it, the group holds nothing after.
    bystander = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        procs = tmp_path / "cgroup.procs"
        reads = iter([f"{bystander.pid}\n", ""])

        class Listing(type(tmp_path)):
            def read_text(self, *args, **kwargs):
                return next(reads, "") if self.name == "cgroup.procs" else super().read_text(*args, **kwargs)

        procs.write_text("")
        SandboxCgroup._empty(Listing(tmp_path))
        assert bystander.poll() is None, "a bystander was killed"
    finally:
        bystander.kill()
        bystander.wait()
