"""The Keras model archive a child hands back, checked before Keras reads a byte of it.

A ``.keras`` file written by a process that ran student code is read into memory (at most
``MAX_MODEL_BYTES``), its members, their declared and actual sizes bounded (zip bombs lie in
headers), its ``config.json`` checked against an allow-list of the Keras classes a model of this
lesson may contain and bounded in size (``autograder.sandbox.model_config``), its weights file checked for
links to other files and for sizes, and only then handed to Keras's safe mode as a private copy
the grader wrote from the bytes it checked (``load_model_bytes``). Nothing is unpickled or
imported on the archive's word. The grader reads the child's models with it, and the kit's
trainer the model a ``fit`` call describes.
"""

from __future__ import annotations

import io
import math
import struct
import tempfile
import warnings
import zipfile
from pathlib import Path
from typing import Any

from autograder.errors import ArtifactError
from autograder.sandbox.bounded_files import load_json, read_bounded
from autograder.sandbox.model_config import keras_modules_only, validate_model_config

MAX_MODEL_BYTES = 64 * 1024**2  # the lesson's model is about 1 MiB (3 MiB with Adam's slots)

# The .keras archive: what Keras writes, and nothing else (any other member is an "asset" that
# Keras would extract to disk). Sizes are uncompressed; Keras stores its members uncompressed.
MODEL_MEMBERS = {"config.json": 1024**2, "metadata.json": 64 * 1024, "model.weights.h5": 256 * 1024**2}
MAX_MODEL_MEMBERS = len(MODEL_MEMBERS)
MAX_MODEL_UNCOMPRESSED_BYTES = 256 * 1024**2 + 2 * 1024**2
MAX_ZIP_DIRECTORY_BYTES = 64 * 1024  # the central directory of three members is about 200 bytes
MAX_WEIGHT_OBJECTS = 4096  # groups and arrays in model.weights.h5: about 20 for the lesson's model


def _plain_and_shallow(item: Any, depth: int) -> None:
    if depth > 4:
        raise ArtifactError("the model's metadata.json is nested too deeply")
    if isinstance(item, dict):
        for key, value in item.items():
            _plain_and_shallow(value, depth + 1)
    elif isinstance(item, list):
        for value in item:
            _plain_and_shallow(value, depth + 1)


def _zip_directory_bounded(data: bytes) -> None:
    """Before zipfile parses the archive's central directory: few entries, a small directory."""
    end = data.rfind(b"PK\x05\x06", max(0, len(data) - 22 - 65535))
    if end < 0 or len(data) - end < 22:
        raise ArtifactError("the model file is not a .keras archive")
    if end >= 20 and data[end - 20 : end - 16] == b"PK\x06\x07":  # a Zip64 record would override the counts
        raise ArtifactError("the model file is a Zip64 archive, which Keras never writes")
    entries_here, entries, size = struct.unpack("<HHI", data[end + 8 : end + 16])
    if max(entries_here, entries) > MAX_MODEL_MEMBERS or size > MAX_ZIP_DIRECTORY_BYTES:
        raise ArtifactError(f"the model archive has more than {MAX_MODEL_MEMBERS} members or a directory too large")


def read_model_archive(data: bytes) -> dict[str, bytes]:
    """The members of a ``.keras`` archive, each read whole within its bound, or ArtifactError."""
    if len(data) > MAX_MODEL_BYTES:
        raise ArtifactError(f"the model file is larger than {MAX_MODEL_BYTES:,} bytes")
    _zip_directory_bounded(data)
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, ValueError, OSError, EOFError) as error:
        raise ArtifactError(f"the model file is not a .keras archive: {error}") from None
    with archive:
        infos = archive.infolist()
        names = [info.filename for info in infos]
        if len(infos) > MAX_MODEL_MEMBERS or len(set(names)) != len(names):
            raise ArtifactError(f"the model archive has more than {MAX_MODEL_MEMBERS} members, or one twice")
        unexpected = [name for name in names if name not in MODEL_MEMBERS]
        if unexpected:
            raise ArtifactError(f"the model archive holds an unexpected member {unexpected[0][:80]!r}")
        for required in ("config.json", "model.weights.h5"):
            if required not in names:
                raise ArtifactError(f"the model archive has no {required}")
        declared = 0
        for info in infos:
            if info.file_size > MODEL_MEMBERS[info.filename]:
                raise ArtifactError(
                    f"the model's {info.filename} declares more than {MODEL_MEMBERS[info.filename]:,} bytes"
                )
            if info.flag_bits & 0x1 or info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
                raise ArtifactError(f"the model's {info.filename} is encrypted or compressed in an unexpected way")
            declared += info.file_size
        if declared > MAX_MODEL_UNCOMPRESSED_BYTES:
            raise ArtifactError(f"the model archive declares more than {MAX_MODEL_UNCOMPRESSED_BYTES:,} bytes in all")
        members = {}
        for info in infos:
            bound = min(MODEL_MEMBERS[info.filename], info.file_size)
            try:
                with archive.open(info) as member:
                    content = member.read(bound + 1)
                    if len(content) <= bound and member.read(1):  # more than declared: a lying header
                        content += b"?"
            except (zipfile.BadZipFile, ValueError, OSError, EOFError, RuntimeError) as error:
                raise ArtifactError(f"the model's {info.filename} could not be read: {error}") from None
            except Exception as error:  # zlib.error and the like: the archive is damaged or forged
                raise ArtifactError(f"the model's {info.filename} could not be read: {type(error).__name__}") from None
            if len(content) != info.file_size:
                raise ArtifactError(f"the model's {info.filename} does not decompress to the size its header declares")
            members[info.filename] = content
    return members


def _check_weights(data: bytes) -> None:
    """model.weights.h5: groups and numeric arrays only, linked in this file, of bounded size."""
    import h5py

    try:
        handle = h5py.File(io.BytesIO(data), "r")
    except Exception as error:
        raise ArtifactError(f"the model's weights are not an HDF5 file: {type(error).__name__}") from None
    with handle:
        groups, objects, declared = [handle], 0, 0
        limit = MODEL_MEMBERS["model.weights.h5"]
        while groups:
            group = groups.pop()
            for name in group:
                objects += 1
                if objects > MAX_WEIGHT_OBJECTS:
                    raise ArtifactError(f"the model's weights hold more than {MAX_WEIGHT_OBJECTS} objects")
                if not isinstance(group.get(name, getlink=True), h5py.HardLink):
                    raise ArtifactError("the model's weights link to other files or paths")
                obj = group[name]
                if isinstance(obj, h5py.Group):
                    groups.append(obj)
                    continue
                if not isinstance(obj, h5py.Dataset):
                    raise ArtifactError("the model's weights hold an object that is not an array")
                if obj.external or obj.is_virtual:
                    raise ArtifactError("the model's weights refer to data in other files")
                if obj.dtype.kind not in "biuf" or obj.shape is None:
                    raise ArtifactError("the model's weights hold an array that is not numeric")
                declared += math.prod(obj.shape) * obj.dtype.itemsize
                if declared > limit:
                    raise ArtifactError(f"the model's weights declare more than {limit:,} bytes")


def load_model_bytes(data: bytes):
    """A Keras model from the bytes of a ``.keras`` file, after every check above; ArtifactError
    when a check refuses it (Keras's own errors pass through). Keras opens a private copy that the
    grader wrote from the bytes it checked, in safe mode."""
    members = read_model_archive(data)
    for name in ("metadata.json", "config.json"):
        if name in members:
            content = load_json(members[name], f"the model's {name}")
            if name == "config.json":
                validate_model_config(content)
            elif not isinstance(content, dict):
                raise ArtifactError("the model's metadata.json is not an object")
            else:
                keras_modules_only(content)
                _plain_and_shallow(content, 0)
    _check_weights(members["model.weights.h5"])

    import keras

    with tempfile.TemporaryDirectory(prefix="autograder-model-") as private:
        path = Path(private) / "model.keras"
        with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED) as copy:
            for name in ("metadata.json", "config.json", "model.weights.h5"):
                if name in members:
                    copy.writestr(name, members[name])
        # Keras warns that an untrained optimizer's slots were not saved (Adam, momentum): no fault of
        # the submission's, and a grader run with warnings as errors must not refuse the model for it.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return keras.saving.load_model(path, compile=True, safe_mode=True)


def load_model_safely(path: Path):
    """A Keras model from a ``.keras`` file read with ``read_bounded``, then ``load_model_bytes``."""
    return load_model_bytes(read_bounded(path, MAX_MODEL_BYTES))
