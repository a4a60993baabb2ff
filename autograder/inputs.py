"""What the grader hands a submission's code: the public training data and a few test images.

Built by the trusted grader from ``ReferenceData``; the sandbox's child gets it as one ``.npz``
file. It never holds the test labels, nor more of the test set than the predictions need, so
the student's process has nothing to compute a test accuracy from.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from autograder.probe import PREDICT_SAMPLE


def frozen(array: np.ndarray) -> np.ndarray:
    """Read-only, so a function that shuffles or scales its input in place fails loudly instead of
    silently changing what every later probe sees."""
    array.flags.writeable = False
    return array


@dataclass
class ProbeInputs:
    train_images: np.ndarray  # uint8 (60000, 28, 28)
    train_labels: np.ndarray  # uint8 (60000,)
    train_scaled: np.ndarray  # float32, the kit's train_images / 255
    X_test_sample: np.ndarray  # float32, the first test images, normalized

    @classmethod
    def from_reference(cls, data) -> "ProbeInputs":
        return cls(
            train_images=frozen(data.train_images.copy()),
            train_labels=frozen(data.train_labels.copy()),
            train_scaled=data.train_scaled,
            X_test_sample=frozen(data.X_test[:PREDICT_SAMPLE].copy()),
        )

    def save(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        np.savez(
            folder / "inputs.npz",
            train_images=self.train_images,
            train_labels=self.train_labels,
            train_scaled=self.train_scaled,
            X_test_sample=self.X_test_sample,
        )

    @classmethod
    def load(cls, folder: Path) -> "ProbeInputs":
        with np.load(folder / "inputs.npz", allow_pickle=False) as saved:
            return cls(
                train_images=frozen(saved["train_images"]),
                train_labels=frozen(saved["train_labels"]),
                train_scaled=frozen(saved["train_scaled"]),
                X_test_sample=frozen(saved["X_test_sample"]),
            )
