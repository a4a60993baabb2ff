"""`import autograder` and `autograder --help` must not pay for TensorFlow."""

import subprocess
import sys
from pathlib import Path

HEAVY = ("tensorflow", "keras", "matplotlib", "nbclient", "nbgrader")


def test_importing_the_package_and_its_cli_loads_no_tensorflow():
    code = (
        "import sys, autograder, autograder.cli, autograder.data.fashion_mnist, autograder.submission.notebook,"
        " autograder.trainer.fast_path;"
        f"print(sorted(m for m in {HEAVY!r} if m in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


def test_help_answers_from_the_console_script_and_python_m():
    script = Path(sys.executable).with_name("autograder")
    for command in ([str(script), "--help"], [sys.executable, "-m", "autograder", "--help"]):
        result = subprocess.run(command, capture_output=True, text=True)
        assert result.returncode == 0, result.stderr
        assert "usage: autograder" in result.stdout
        assert "demo" in result.stdout


def test_an_unknown_command_is_a_usage_error():
    result = subprocess.run([sys.executable, "-m", "autograder", "nonsense"], capture_output=True, text=True)
    assert result.returncode == 2
    assert "invalid choice" in result.stderr


def test_the_public_names_resolve_on_first_use_and_load_no_tensorflow():
    code = (
        "import sys, autograder;"
        "stages = sorted(m for m in sys.modules if m.startswith('autograder.'));"
        "public = {name: getattr(autograder, name) for name in autograder.__all__};"
        "from autograder.batch.local import grade_notebooks;"
        "from autograder.judge.report import GradeReport;"
        "same = public['grade_notebooks'] is grade_notebooks and public['GradeReport'] is GradeReport;"
        f"print(stages, sorted(public), same, sorted(m for m in {HEAVY!r} if m in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    public = ["GradeReport", "__version__", "grade_notebooks", "load_fashion_mnist", "load_functions", "self_check"]
    assert result.stdout.strip() == f"[] {public} True []"


def test_modules_imported_for_good_are_left_out_of_the_collector_s_walks():
    """What the kit's processes do with TensorFlow and Keras (autograder.import_for_good), tried on a
    module of the standard library: imported, frozen, and the collector as it was before."""
    code = (
        "import gc, sys, autograder;"
        "before = gc.get_freeze_count();"
        "autograder.import_for_good('email.mime.text');"
        "made = sys.modules['email.mime.text'].MIMEText;"
        "print(before, gc.get_freeze_count() > before, gc.isenabled(), any(o is made for o in gc.get_objects()));"
        "gc.disable(); autograder.import_for_good('json.tool'); print('json.tool' in sys.modules, gc.isenabled())"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.split("\n")[:2] == ["0 True True False", "True False"]


def test_two_threads_importing_for_good_at_once_leave_the_collector_on():
    """The second thread must not take the first one's paused collector for the state to restore. Held
    at the worst moment: the second has read the collector's state and the first ends before it pauses."""
    code = """
import gc, importlib, threading, time, autograder
first_in, let_first, let_pause = threading.Event(), threading.Event(), threading.Event()
real_import, real_disable = importlib.import_module, gc.disable
def held_import(name):
    if name == 'first':
        first_in.set(); let_first.wait(5)
def held_disable():
    if threading.current_thread().name == 'two':
        let_pause.wait(5)
    real_disable()
importlib.import_module, gc.disable = held_import, held_disable
one = threading.Thread(target=autograder.import_for_good, args=('first',), name='one'); one.start(); first_in.wait(5)
two = threading.Thread(target=autograder.import_for_good, args=('second',), name='two'); two.start(); time.sleep(0.3)
let_first.set(); one.join(); let_pause.set(); two.join()
print(gc.isenabled())
"""
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "True"


def test_the_grader_s_tensorflow_import_beside_other_threads_drops_only_tensorflow_s_start_up_lines():
    """The grader imports TensorFlow in a thread while its sandboxes run (autograder.batch.steps): its
    start-up lines ("Could not find cuda drivers") must not reach the instructor's terminal, and what
    the grader's other threads write to stderr meanwhile must, whole."""
    code = """
import os, sys, threading
os.environ.pop("TF_CPP_MIN_LOG_LEVEL", None)
from autograder.trainer.quiet import quiet_tensorflow
done = threading.Event()
def other_thread():
    n = 0
    while not done.is_set():
        # One write a line: print writes the text and its newline apart, and the main thread's write at
        # the end could fall between them whatever the kit does (CI, 2026-12-01).
        sys.stderr.write(f"grader line {n}\\n")
        sys.stderr.flush()
        n += 1
        done.wait(0.01)
    print(n, flush=True)
thread = threading.Thread(target=other_thread)
thread.start()
quiet_tensorflow(beside_threads=True)
os.write(2, b"I0000 00:00:1.2   7 port.cc:1] after the import: not TensorFlow's start-up, kept\\n")
done.set()
thread.join()
"""
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    count = int(result.stdout)
    assert count > 10  # the thread wrote while TensorFlow loaded
    lines = result.stderr.splitlines()
    assert [line for line in lines if line.startswith("grader line")] == [f"grader line {n}" for n in range(count)]
    kept = "I0000 00:00:1.2   7 port.cc:1] after the import: not TensorFlow's start-up, kept"
    assert [line for line in lines if not line.startswith("grader line")] == [kept]


def fake_tensorflow(folder: Path, body: str) -> dict:
    """An environment whose ``import tensorflow`` runs ``body`` (and whose ``import keras`` imports it)."""
    (folder / "tensorflow").mkdir()
    (folder / "tensorflow" / "__init__.py").write_text(body)
    (folder / "keras").mkdir()
    (folder / "keras" / "__init__.py").write_text("import tensorflow\n")
    import os

    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(folder), *sys.path])}


def test_the_grader_s_last_lines_reach_stderr_when_it_exits_while_tensorflow_loads(tmp_path):
    """Ctrl-C or a fault while the grader's thread imports TensorFlow: its last words go through the filter's
    pipe, and must come out before the process ends."""
    env = fake_tensorflow(tmp_path, (
        "import os, time\n"
        "os.write(2, b'I0000 00:00:1.5   7 port.cc:153] a start-up line\\n')\n"
        "time.sleep(5)\n"
    ))
    code = (
        "import sys, threading, time\n"
        "from autograder.trainer.quiet import quiet_tensorflow\n"
        "threading.Thread(target=quiet_tensorflow, args=(True,), daemon=True).start()\n"
        "time.sleep(0.5)\n"
        "print('autograder: interrupted', file=sys.stderr)\n"
        "sys.exit(130)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60)
    assert (result.returncode, result.stderr) == (130, "autograder: interrupted\n")


def test_an_import_of_tensorflow_that_failed_in_the_grader_s_thread_is_tried_again_quietly(tmp_path):
    """The thread's import fails once (memory short for a moment): judging imports it again, TensorFlow's
    start-up lines filtered as before, and nothing of the thread's failure reaches the instructor."""
    env = fake_tensorflow(tmp_path, (
        "import os, pathlib\n"
        f"marker = pathlib.Path({str(tmp_path / 'tried')!r})\n"
        "if not marker.exists():\n"
        "    marker.touch()\n"
        "    raise MemoryError('short for a moment')\n"
        "os.write(2, b'I0000 00:00:1.5   7 port.cc:153] a start-up line\\n')\n"
    ))
    code = (
        "import sys\n"
        "from autograder.batch import steps\n"
        "steps.import_keras_meanwhile()\n"
        "steps.keras_imported()\n"
        "print('keras' in sys.modules)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60)
    assert (result.returncode, result.stdout, result.stderr) == (0, "True\n", "")
