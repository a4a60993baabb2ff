"""Artifacts on disk: written by the sandbox's child, read back by the trusted grader.

Everything read here was written by a process that ran student code, so it is data and only
data: arrays through ``numpy.load(allow_pickle=False)`` (one ``.npy`` file each: an ``.npz`` of the
split's 190 MB took a second to write and another to read), facts through JSON with sizes capped and
types checked, models through Keras's safe mode after the archive's configuration has been read
and every class in it found to come from Keras itself. Nothing is unpickled or imported on the
child's word, and nothing the child writes is taken as a result: the checks judge these.
"""

from __future__ import annotations

import json
import re
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from autograder.probe import Artifacts

MAX_ARRAYS_BYTES = 1536 * 1024**2  # 60,000 images in float64 twice over, and a margin
MAX_VALUES_BYTES = 8 * 1024**2
MAX_MODEL_BYTES = 64 * 1024**2  # the lesson's model is about 3 MiB
MODEL_NAMES = ("built", "compiled", "trained")
ARRAY_NAME = re.compile(r"[A-Za-z0-9_]{1,64}")


class ArtifactError(Exception):
    """An artifact file is missing, too large or malformed (the child died, or was tampered with)."""


def write_artifacts(artifacts: Artifacts, folder: Path) -> None:
    """In the child: save what the probes produced."""
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
            model.save(models_folder / f"{name}.keras")
        except Exception as error:  # a model Keras cannot save cannot be graded either
            errors[f"model:{name}"] = f"the model could not be saved: {type(error).__name__}: {error}"
    values = {"errors": errors, "not_done": sorted(artifacts.not_done), "values": artifacts.values}
    (folder / "values.json").write_text(json.dumps(values))


def _sized(path: Path, limit: int) -> Path:
    if not path.is_file():
        raise ArtifactError(f"{path.name} is missing")
    if path.stat().st_size > limit:
        raise ArtifactError(f"{path.name} is larger than {limit} bytes")
    return path


def read_artifacts(folder: Path) -> Artifacts:
    """In the trusted grader: load the child's artifacts as plain data, or raise ArtifactError."""
    raw = json.loads(_sized(folder / "values.json", MAX_VALUES_BYTES).read_text())
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
    artifacts = Artifacts(errors=dict(errors), not_done=set(not_done), values=plain_json(values))
    arrays_folder = folder / "arrays"
    if not arrays_folder.is_dir():
        raise ArtifactError("the arrays folder is missing")
    files = sorted(arrays_folder.iterdir())
    if sum(path.lstat().st_size for path in files) > MAX_ARRAYS_BYTES:
        raise ArtifactError(f"the arrays are larger than {MAX_ARRAYS_BYTES} bytes")
    for path in files:
        if path.suffix != ".npy" or not ARRAY_NAME.fullmatch(path.stem) or path.is_symlink() or not path.is_file():
            raise ArtifactError(f"unexpected file among the arrays: {path.name[:80]!r}")
        array = np.load(path, allow_pickle=False)  # read whole: nothing can change it afterwards
        if array.dtype.kind not in "biuf":
            raise ArtifactError(f"array {path.stem} is not numeric")
        artifacts.arrays[path.stem] = array
    for name in MODEL_NAMES:
        path = folder / "models" / f"{name}.keras"
        if path.exists():
            try:
                artifacts.models[name] = load_model_safely(path)
            except Exception as error:
                artifacts.errors.setdefault(
                    f"model:{name}", f"the model could not be loaded safely: {type(error).__name__}: {error}"
                )
    return artifacts


def plain_json(value: Any) -> Any:
    """JSON values only (what json.loads gives is already plain; this also bounds the nesting)."""

    def walk(item, depth):
        if depth > 20:
            raise ArtifactError("values.json is nested too deeply")
        if isinstance(item, dict):
            return {str(k): walk(v, depth + 1) for k, v in item.items()}
        if isinstance(item, list):
            return [walk(v, depth + 1) for v in item]
        if item is None or isinstance(item, (bool, int, float, str)):
            return item
        raise ArtifactError("values.json holds a value that is not plain JSON")

    return walk(value, 0)


def keras_modules_only(config: Any) -> None:
    """Refuse a model configuration that names any module outside Keras (no import on its word)."""
    if isinstance(config, dict):
        module = config.get("module")
        if module is not None and not (isinstance(module, str) and (module == "keras" or module.startswith("keras."))):
            raise ArtifactError(f"the model refers to code outside Keras (module {module!r})")
        if config.get("registered_name") not in (None, config.get("class_name")) and "class_name" in config:
            raise ArtifactError(f"the model uses a custom object {config.get('registered_name')!r}")
        for value in config.values():
            keras_modules_only(value)
    elif isinstance(config, list):
        for value in config:
            keras_modules_only(value)


def load_model_safely(path: Path):
    import keras

    _sized(path, MAX_MODEL_BYTES)
    with zipfile.ZipFile(path) as archive:
        for member in ("config.json", "metadata.json"):
            if member in archive.namelist():
                if archive.getinfo(member).file_size > MAX_VALUES_BYTES:
                    raise ArtifactError(f"the model's {member} is too large")
                keras_modules_only(json.loads(archive.read(member)))
    return keras.saving.load_model(path, compile=True, safe_mode=True)
