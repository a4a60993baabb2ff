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
        from autograder.data.fashion_mnist import load_fashion_mnist

        return cls.from_dataset(load_fashion_mnist(directory))

    @cached_property
    def train_scaled(self) -> np.ndarray:
        return read_only(scaled(self.train_images))

    @cached_property
    def X_test(self) -> np.ndarray:
        return read_only(scaled(self.test_images))

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


def scaled(images: np.ndarray) -> np.ndarray:
    """The kit's normalization: float32, the dtype Keras computes in (float64 inputs would be
    converted on every batch)."""
    return images.astype(np.float32) / np.float32(255)


def read_only(array: np.ndarray) -> np.ndarray:
    """Shared with every check and every probe: a student's function that shuffles or scales its
    input in place fails loudly instead of silently changing what every later one sees."""
    array.flags.writeable = False
    return array


def prediction_model(seed: int = SEED):
    """The lesson's model with random weights and random biases, for checking prediction code.

    Its answers must differ from image to image and change when the images are scaled: with
    zero biases a ReLU network's arg-max does not change when its input is divided by 255 (it is
    positively homogeneous), which would hide a second scaling of the images. Random biases break
    that, without the cost of training. Each call returns a new model with the same weights, so a
    student's function cannot alter what the next check sees. Every weight comes from this call's own
    generator (the kernels Glorot-uniform, as Keras draws them), never from Keras's process-wide
    random state: with ``--workers 2`` two judges build it at once, each reseeding that state.

    Most random draws of such a network answer one or two classes for every image, which would hide
    both mistakes; ``PREDICTION_SEED`` draws one that answers 9 of the 10 classes on the checked images
    and changes its answer for 491 of 500 when they are scaled again (held by a test).
    """
    model = build_reference_model(seed)
    generator = np.random.default_rng(PREDICTION_SEED)
    weights = []
    for w in model.get_weights():
        if w.ndim > 1:
            limit = np.sqrt(6.0 / (w.shape[0] + w.shape[1]))
            weights.append(generator.uniform(-limit, limit, w.shape).astype(w.dtype))
        else:
            weights.append(generator.normal(0.0, 0.1, w.shape).astype(w.dtype))
    model.set_weights(weights)
    return model


PREDICTION_SEED = 17


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
