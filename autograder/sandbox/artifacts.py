"""The artifacts: what the sandbox's child hands the trusted grader, defined once for writer and reader.

The record (``Artifacts``) holds what the probes (``autograder.sandbox.probe``) got from a
submission's functions on the kit's inputs; the checks (``autograder.judge``) judge nothing else.
Its entries are named here, with their types and what each holds (``ARRAYS``, ``VALUES``,
``MODEL_NAMES``), and so are the bounds the grader reads them within. In the child's
``artifacts/`` folder (``write_artifacts``):

- ``values.json``: ``{"errors": {probe: why}, "not_done": [probe, ...], "values": {name: JSON}}``,
  at most ``MAX_VALUES_BYTES``, nested at most ``MAX_VALUES_DEPTH`` deep;
- ``arrays/NAME.npy``: one ``.npy`` file per array (an ``.npz`` of the split's 190 MB took a
  second to write and another to read), numeric, at most ``MAX_ARRAY_FILES`` of them and
  ``MAX_ARRAYS_BYTES`` in all;
- ``models/NAME.keras``: the models as Keras saves them, each at most ``MAX_MODEL_BYTES``.

Everything ``read_artifacts`` reads was written by a process that ran student code, so it is
hostile input, read as data only with a bound on everything (``autograder.sandbox.bounded_files``,
``autograder.sandbox.model_archive``). Nothing is unpickled or imported on the child's word, and
nothing the child writes is taken as a result: the checks judge these.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from autograder.errors import ArtifactError, ArtifactMissing, ArtifactTooLarge
from autograder.i18n import _
from autograder.sandbox.bounded_files import load_json, open_folder, parse_npy, plain_json, read_bounded
from autograder.sandbox.model_archive import MAX_MODEL_BYTES, load_model_bytes


@dataclass
class Artifacts:
    """Everything the checks look at. Plain data: arrays, strings, numbers, lists, dicts, models."""

    errors: dict[str, str] = field(default_factory=dict)  # probe -> why it produced nothing
    not_done: set[str] = field(default_factory=set)  # probes whose function is still a stub
    arrays: dict[str, np.ndarray] = field(default_factory=dict)
    values: dict[str, Any] = field(default_factory=dict)  # JSON-able facts
    models: dict[str, Any] = field(default_factory=dict)  # name -> Keras model


# The record's entries, by the names the probes write and the checks read. Arrays: numeric numpy
# arrays, the probe that writes each first in its description.
ARRAYS = {
    "normalize_input_after": "normalize: the images it was given, after the call (unchanged unless it wrote into them)",
    "normalize_output": "normalize: what it returned",
    "normalize_dark_output": "normalize: what it returned for the same images halved (integer division by 2)",
    "split_X_train": "split: split_validation's training images, on the kit's normalized training set",
    "split_y_train": "split: its training labels",
    "split_X_valid": "split: its validation images",
    "split_y_valid": "split: its validation labels",
    "predict_output": "predict_labels: what it returned for the test sample, with the kit's prediction model",
}
# Values: JSON, with their type.
VALUES = {
    "split_small_lengths": (list, "split: the lengths of the four parts for 100 images and n_valid=10"),
    "compile_returned_none": (bool, "compile: compile_model compiled the model it was given but returned None"),
    "plot_svg": (str, "samples_plot: the Figure plot_samples returned, drawn as SVG with its text kept as text"),
    "training": (dict, "training: what train_model returned, as {returned, returned_the_history, fit_calls, "
                       "epochs_probe_calls, epochs_probe_error} (the last two: the short call with epochs=2); "
                       "the training itself is the kit's trainer's record, which the grader keeps"),
}
MODEL_NAMES = ("built", "compiled")  # build_model's model; compile_model's, on the kit's model

MAX_ARRAYS_BYTES = 1536 * 1024**2  # 60,000 images in float64 twice over, and a margin
MAX_ARRAY_FILES = 64  # the probes write about ten
MAX_VALUES_BYTES = 8 * 1024**2  # the figure's drawing, about 0.7 MB, is the largest value
MAX_VALUES_DEPTH = 20
ARRAY_NAME = re.compile(r"[A-Za-z0-9_]{1,64}")


def write_artifacts(artifacts: Artifacts, folder: Path) -> None:
    """In the child: save what the probes produced."""
    from autograder.sandbox.fit_client import with_keras_activations

    folder.mkdir(parents=True, exist_ok=True)
    arrays_folder = folder / "arrays"
    arrays_folder.mkdir(exist_ok=True)
    for name, array in artifacts.arrays.items():
        np.save(arrays_folder / f"{name}.npy", array, allow_pickle=False)
    models_folder = folder / "models"
    models_folder.mkdir(exist_ok=True)
    errors = dict(artifacts.errors)
    for name, model in artifacts.models.items():
        try:
            with_keras_activations(model).save(models_folder / f"{name}.keras")
        except Exception as error:  # a model Keras cannot save cannot be graded either
            errors[f"model:{name}"] = _("the model could not be saved: {error}").format(
                error=f"{type(error).__name__}: {error}")
    values = {"errors": errors, "not_done": sorted(artifacts.not_done), "values": artifacts.values}
    (folder / "values.json").write_text(json.dumps(values))


def read_artifacts(folder: Path) -> Artifacts:
    """In the trusted grader: load the child's artifacts as plain data, or raise ArtifactError."""
    folder_fd = open_folder(folder)
    try:
        artifacts = _read_values(read_bounded("values.json", MAX_VALUES_BYTES, dir_fd=folder_fd))
        try:
            arrays_fd = open_folder("arrays", dir_fd=folder_fd)
        except ArtifactMissing:
            raise ArtifactError("the arrays folder is missing") from None
        try:
            artifacts.arrays.update(_read_arrays(arrays_fd))
        finally:
            os.close(arrays_fd)
        try:
            models_fd = open_folder("models", dir_fd=folder_fd)
        except ArtifactMissing:
            return artifacts
        try:
            _read_models(models_fd, artifacts)
        finally:
            os.close(models_fd)
        return artifacts
    finally:
        os.close(folder_fd)


def _read_models(models_fd: int, artifacts: Artifacts) -> None:
    """Each model of ``MODEL_NAMES`` that is there; one that cannot be read or loaded safely is
    noted among the errors, as ``model:NAME``."""
    for name in MODEL_NAMES:
        try:
            data = read_bounded(f"{name}.keras", MAX_MODEL_BYTES, dir_fd=models_fd)
        except ArtifactMissing:
            continue
        except ArtifactError as error:
            artifacts.errors.setdefault(f"model:{name}", _("the model could not be read: {error}").format(error=error))
            continue
        try:
            artifacts.models[name] = load_model_bytes(data)
        except Exception as error:
            artifacts.errors.setdefault(
                f"model:{name}",
                _("the model could not be loaded safely: {error}").format(error=f"{type(error).__name__}: {error}"),
            )


def _read_values(data: bytes) -> Artifacts:
    raw = load_json(data, "values.json")
    if not isinstance(raw, dict):
        raise ArtifactError("values.json is not an object")
    errors = raw.get("errors", {})
    not_done = raw.get("not_done", [])
    values = raw.get("values", {})
    if not (
        isinstance(errors, dict)
        and all(isinstance(k, str) and isinstance(v, str) for k, v in errors.items())
        and isinstance(not_done, list)
        and all(isinstance(n, str) for n in not_done)
        and isinstance(values, dict)
    ):
        raise ArtifactError("values.json does not have the expected structure")
    values = plain_json(values, "values.json", MAX_VALUES_DEPTH)
    return Artifacts(errors=dict(errors), not_done=set(not_done), values=values)


def _read_arrays(arrays_fd: int) -> dict[str, np.ndarray]:
    names = []
    with os.scandir(arrays_fd) as entries:
        for entry in entries:
            if len(names) >= MAX_ARRAY_FILES:
                raise ArtifactError(f"there are more than {MAX_ARRAY_FILES} files among the arrays")
            names.append(entry.name)
    arrays, left = {}, MAX_ARRAYS_BYTES
    for name in sorted(names):
        stem = name[: -len(".npy")]
        if not name.endswith(".npy") or not ARRAY_NAME.fullmatch(stem):
            raise ArtifactError(f"unexpected file among the arrays: {name[:80]!r}")
        try:
            data = read_bounded(name, left, dir_fd=arrays_fd)
        except ArtifactTooLarge:
            raise ArtifactTooLarge(f"the arrays are larger than {MAX_ARRAYS_BYTES:,} bytes") from None
        except ArtifactError as error:
            raise ArtifactError(f"unexpected file among the arrays: {error}") from None
        left -= len(data)
        arrays[stem] = parse_npy(data, stem)
        del data
    return arrays

