"""What the grader hands a submission's code: the public training data and a few test images.

Built by the trusted grader from ``ReferenceData``; the sandbox's child gets it as a folder of
``.npy`` files, written once per batch and mapped into memory by each child (reading 235 MB out
of an ``.npz`` cost every submission two seconds). The scaled images are not written: the child
computes them from the raw ones with the kit's own ``scaled``, in a third of a second. It never
holds the test labels, nor more of the test set than the predictions need, so the student's
process has nothing to compute a test accuracy from.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np

from autograder.data.reference import read_only, scaled

# How much of the kit's data each probe hands a student's function (autograder.sandbox.probe).
SPLIT_SMALL = (100, 10)  # split_validation called again on 100 images with n_valid=10
NORMALIZE_SAMPLE = 2000
PLOT_SAMPLES = 60  # plot_samples is given 60 images and shows the first 40
PREDICT_SAMPLE = 500


@dataclass
class ProbeInputs:
    train_images: np.ndarray  # uint8 (60000, 28, 28)
    train_labels: np.ndarray  # uint8 (60000,)
    X_test_sample: np.ndarray  # float32, the first test images, normalized

    @cached_property
    def train_scaled(self) -> np.ndarray:
        """float32, the kit's train_images / 255: computed where it is used (0.3 s), never shipped."""
        return read_only(scaled(self.train_images))

    @classmethod
    def from_reference(cls, data) -> "ProbeInputs":
        return cls(
            train_images=read_only(data.train_images.copy()),
            train_labels=read_only(data.train_labels.copy()),
            X_test_sample=read_only(scaled(data.test_images[:PREDICT_SAMPLE])),
        )

    def save(self, folder: Path) -> list[Path]:
        """Write one read-only ``.npy`` file per array into ``folder``; returns the files."""
        folder.mkdir(parents=True, exist_ok=True)
        files = []
        for name in SAVED:
            path = folder / f"{name}.npy"
            np.save(path, getattr(self, name), allow_pickle=False)
            os.chmod(path, 0o444)
            files.append(path)
        return files

    @classmethod
    def load(cls, folder: Path) -> "ProbeInputs":
        # Mapped read-only: pages shared by every child, and nothing to copy before the probes start.
        return cls(**{name: read_only(np.asarray(np.load(folder / f"{name}.npy", mmap_mode="r"))) for name in SAVED})


SAVED = ("train_images", "train_labels", "X_test_sample")
