from __future__ import annotations

import os
from pathlib import Path

import pytest

# Set before any test imports TensorFlow, so its C++ start-up chatter stays out of test output.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("MPLBACKEND", "Agg")


@pytest.fixture(scope="session")
def real_data_dir():
    from autograder.data.fashion_mnist import find_data_dir

    found = find_data_dir()
    if found is None:
        pytest.fail("Fashion-MNIST is not on this machine: run `make data` (or set FASHION_MNIST_DIR)")
    return found


@pytest.fixture(scope="session")
def kept_trainings(tmp_path_factory):
    """The kit's trainings kept across the suite's batches, as ``--trainings`` keeps them across an
    instructor's runs: a description the suite's trainers already trained is replayed, not trained
    again. Tests that count trainings, or that compare a training with its replay, grade without it."""
    return tmp_path_factory.mktemp("trainings")


@pytest.fixture(scope="session")
def dataset(real_data_dir):
    from autograder.data import load_fashion_mnist

    return load_fashion_mnist(real_data_dir)


@pytest.fixture(scope="session")
def small_split(dataset):
    """A small split of the real data for a trainer in the test's process: 320 training and 64
    validation images (the kit's array names), and 64 test images."""
    import numpy as np

    (train_images, train_labels), (test_images, _) = dataset
    X = (train_images[:384] / 255.0).astype(np.float32)
    y = train_labels[:384]
    arrays = {"X_train": X[64:], "y_train": y[64:], "X_valid": X[:64], "y_valid": y[:64]}
    return arrays, (test_images[:64] / 255.0).astype(np.float32)


@pytest.fixture(scope="session")
def reference_functions():
    from autograder.assignment import SOURCE_NOTEBOOK
    from autograder.submission.notebook import load_functions

    return load_functions(SOURCE_NOTEBOOK)


@pytest.fixture
def grader_tmpdir():
    """A temporary folder for a grader run as a command (its TMPDIR), reachable by the sandbox user
    as /tmp is, and removed afterwards with whatever a killed grader left in it."""
    import os
    import shutil
    import signal
    import tempfile

    root = Path(tempfile.mkdtemp(prefix="grader-tmp-", dir="/tmp"))
    os.chmod(root, 0o1777)
    yield root
    for pid in processes_mentioning(str(root)):  # a sandbox that outlived its grader (a failing test)
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    shutil.rmtree(root, ignore_errors=True)


def processes_mentioning(text: str) -> list[int]:
    """Processes with ``text`` in their command line (its arguments joined by spaces)."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and text.encode() in (entry / "cmdline").read_bytes().replace(b"\0", b" "):
                found.append(int(entry.name))
        except OSError:
            pass
    return found


@pytest.fixture
def recording_cluster(monkeypatch):
    """A Dask cluster that grades nothing: what the grader submits to it, as (notebook, priority, content),
    each answered with an ungraded report."""
    import distributed

    from autograder.batch.cluster import worker_facts
    from autograder.judge.report import GradeReport

    submitted: list[tuple[Path, int, bytes]] = []
    facts = worker_facts()  # what the workers say they grade with, asked first and with each result

    class Finished:
        def __init__(self, payload):
            self.payload = payload

        def result(self):
            return self.payload

    class RecordingClient:
        def __init__(self, address):
            pass

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

        def register_plugin(self, plugin, name):
            pass

        def unregister_worker_plugin(self, name):
            pass

        def submit(self, function, content, name, *args, priority, pure):
            submitted.append((Path(name), priority, content))
            return Finished({**GradeReport.ungraded(Path(name), "not graded in this test").payload(), "facts": facts})

        def scheduler_info(self):
            return {"workers": {}}

        def run(self, function, *args):
            return {"tcp://127.0.0.1:2": function(*args)}

    monkeypatch.setattr(distributed, "Client", RecordingClient)
    monkeypatch.setattr(distributed, "as_completed", iter)
    return submitted
