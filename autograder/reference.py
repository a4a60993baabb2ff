"""The grader's own inputs: Fashion-MNIST normalized and split by the kit, and the lesson's model.

Checks feed students' functions these, never the output of another of the student's functions,
so that one mistake costs points only where it is made.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np

from autograder.assignment import N_VALID, SEED


@dataclass(frozen=True)
class ReferenceData:
    train_images: np.ndarray  # uint8 (60000, 28, 28), as loaded
    train_labels: np.ndarray  # uint8 (60000,)
    test_images: np.ndarray
    test_labels: np.ndarray

    @classmethod
    def from_dataset(cls, dataset) -> "ReferenceData":
        (train_images, train_labels), (test_images, test_labels) = dataset
        return cls(train_images, train_labels, test_images, test_labels)

    @classmethod
    def load(cls, directory=None) -> "ReferenceData":
        from autograder.data import load_fashion_mnist

        return cls.from_dataset(load_fashion_mnist(directory))

    # float32, the dtype Keras computes in: float64 inputs would be converted on every batch.
    @cached_property
    def train_scaled(self) -> np.ndarray:
        return read_only(self.train_images.astype(np.float32) / np.float32(255))

    @cached_property
    def X_test(self) -> np.ndarray:
        return read_only(self.test_images.astype(np.float32) / np.float32(255))

    @property
    def X_train(self) -> np.ndarray:
        return self.train_scaled[N_VALID:]

    @property
    def y_train(self) -> np.ndarray:
        return self.train_labels[N_VALID:]

    @property
    def X_valid(self) -> np.ndarray:
        return self.train_scaled[:N_VALID]

    @property
    def y_valid(self) -> np.ndarray:
        return self.train_labels[:N_VALID]


def read_only(array: np.ndarray) -> np.ndarray:
    """Shared with every check: a student's function that writes into it fails loudly, not silently."""
    array.flags.writeable = False
    return array


_trained_weights: dict[int, list] = {}


def trained_reference_model(data: ReferenceData, seed: int = SEED):
    """A fresh copy of the lesson's model after one short epoch of training.

    Checks of prediction code need a model whose answers differ from image to image: an
    untrained network gives nearly every image the same class, which hides mistakes such as
    scaling the images twice. The weights are trained once per process; each call returns a new
    model holding them, so a student's function cannot alter what the next check sees.
    """
    if seed not in _trained_weights:
        from autograder.training import use_fast_execution

        model = build_reference_model(seed)
        model.compile(loss="sparse_categorical_crossentropy", optimizer="sgd", metrics=["accuracy"])
        use_fast_execution(model)
        model.fit(data.X_train[:10000], data.y_train[:10000], epochs=1, verbose=0)
        _trained_weights[seed] = model.get_weights()
    model = build_reference_model(seed)
    model.set_weights(_trained_weights[seed])
    return model


def build_reference_model(seed: int = SEED):
    """The lesson's network, built by the kit (students' notebooks never have the solutions)."""
    import keras

    keras.utils.set_random_seed(seed)
    return keras.Sequential(
        [
            keras.Input(shape=(28, 28)),
            keras.layers.Flatten(),
            keras.layers.Dense(300, activation="relu"),
            keras.layers.Dense(100, activation="relu"),
            keras.layers.Dense(10, activation="softmax"),
        ]
    )
