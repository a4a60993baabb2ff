"""Sharing identical trainings across sandboxes: only confirmed, only bit-for-bit, only by key."""

from __future__ import annotations

import json
import os
import stat

import numpy as np
import pytest

from autograder.probe import Artifacts
from autograder.reuse import ReuseFolder, SharedTrainings

KEY = "ab" * 32


class Weights:
    """Stands for the trained model the grader loaded from a child's artifacts."""

    def __init__(self, *weights):
        self.weights = [np.asarray(w, np.float32) for w in weights]

    def get_weights(self):
        return self.weights


def trained(key=KEY, weights=(1.0, 2.0), loss=(0.5, 0.4), reused=False) -> Artifacts:
    fit = {"history": {"loss": list(loss)}, "epoch": [0, 1], "params": {"epochs": 2, "steps": 10, "verbose": 0}}
    return Artifacts(
        values={"training": {"key": key, "reused": reused, "fit_history": fit}},
        models={"trained": Weights(*[[w] for w in weights])},
    )


def published(folder):
    return sorted(path.name for path in folder.iterdir())


def test_a_training_is_shared_once_two_submissions_got_the_same_bits(tmp_path):
    shared = SharedTrainings(tmp_path / "batch")
    assert shared.learn("a.ipynb", trained()) is None
    assert published(tmp_path / "batch") == [], "one submission's word is not enough"
    assert shared.learn("a.ipynb", trained()) is None
    assert published(tmp_path / "batch") == [], "the same submission twice is still one"
    shared.learn("b.ipynb", trained())
    assert published(tmp_path / "batch") == [f"{KEY}.json", f"{KEY}.npz"]
    assert stat.S_IMODE(os.stat(tmp_path / "batch").st_mode) == 0o711  # children cannot list it


def test_different_results_for_one_key_are_never_shared(tmp_path):
    shared = SharedTrainings(tmp_path / "batch")
    shared.learn("honest.ipynb", trained())
    shared.learn("hostile.ipynb", trained(weights=(9.0, 9.0)))
    shared.learn("other.ipynb", trained(loss=(0.5, 0.1)))
    assert published(tmp_path / "batch") == []


@pytest.mark.parametrize("key", ["../../etc/passwd", "AB" * 32, "ab", None, 7])
def test_a_malformed_key_is_ignored(tmp_path, key):
    shared = SharedTrainings(tmp_path / "batch")
    for name in ("a", "b", "c"):
        shared.learn(name, trained(key=key))
    assert published(tmp_path / "batch") == []


def test_a_child_replays_a_published_training_exactly(tmp_path):
    import keras

    shared = SharedTrainings(tmp_path / "batch")
    weights = [np.random.default_rng(0).normal(size=(3, 2)).astype(np.float32), np.zeros(2, np.float32)]
    artifacts = trained(weights=(0.0,))
    artifacts.models["trained"] = Weights(*weights)
    for name in ("a", "b"):
        shared.learn(name, artifacts)
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    shared.expose(scratch / "reuse")

    folder = ReuseFolder(scratch / "reuse")
    assert KEY in folder and "cd" * 32 not in folder
    model = keras.Sequential([keras.Input(shape=(3,)), keras.layers.Dense(2)])
    history = folder.replay(KEY, model)
    assert all(np.array_equal(a, b) for a, b in zip(model.get_weights(), weights))
    assert history.history == {"loss": [0.5, 0.4]} and history.epoch == [0, 1] and history.params["steps"] == 10

    # The child says it replayed that result, and its model holds those bits: the report says so.
    replayed = trained(weights=(0.0,), reused=True)
    replayed.models["trained"] = Weights(*weights)
    assert "training reused" in shared.learn("c", replayed)
    replayed.models["trained"] = Weights(*[w + 1 for w in weights])
    assert shared.learn("d", replayed) is None, "a claim the bits do not back is not repeated"


@pytest.mark.slow
def test_a_batch_of_identical_submissions_trains_twice_and_replays_the_rest(real_data_dir, tmp_path):
    import shutil
    from pathlib import Path

    from autograder.grading import grade_notebooks

    notebooks = []
    for student in ("ann", "bob", "cyd"):
        target = tmp_path / student / "fashion_mnist_classifier.ipynb"
        target.parent.mkdir()
        shutil.copy(Path(__file__).parent / "submissions" / "passes_all.ipynb", target)
        notebooks.append(target)
    reports = grade_notebooks(notebooks, data_dir=real_data_dir)

    assert [r.score for r in reports] == [100, 100, 100]
    assert [any("training reused" in note for note in r.notes) for r in reports] == [False, False, True]
    # The replayed training is bit for bit the trained one: every check says the same, to the digit.
    first, _, third = (json.dumps([c.to_json() for c in r.checks]) for r in reports)
    assert third == first
    without = grade_notebooks(notebooks[2:], data_dir=real_data_dir, reuse=False)[0]
    assert json.dumps([c.to_json() for c in without.checks]) == third
    assert not any("training reused" in note for note in without.notes)
