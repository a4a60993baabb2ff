"""The Keras model archive a child hands back, checked before Keras reads a byte of it.

A ``.keras`` file written by a process that ran student code is read into memory (at most
``MAX_MODEL_BYTES``), its members, their declared and actual sizes bounded (zip bombs lie in
headers), its ``config.json`` checked against an allow-list of the Keras classes a model of this
lesson may contain and bounded in size (``validate_model_config``), its weights file checked for
links to other files and for sizes, and only then handed to Keras's safe mode as a private copy
the grader wrote from the bytes it checked (``load_model_bytes``). Nothing is unpickled or
imported on the archive's word. The grader reads the child's models with it, and the kit's
trainer the model a ``fit`` call describes.
"""

from __future__ import annotations

import io
import math
import re
import struct
import tempfile
import types
import warnings
import zipfile
from pathlib import Path
from typing import Any

from autograder.errors import ArtifactError
from autograder.sandbox.bounded_files import load_json, read_bounded

MAX_MODEL_BYTES = 64 * 1024**2  # the lesson's model is about 1 MiB (3 MiB with Adam's slots)

# The .keras archive: what Keras writes, and nothing else (any other member is an "asset" that
# Keras would extract to disk). Sizes are uncompressed; Keras stores its members uncompressed.
MODEL_MEMBERS = {"config.json": 1024**2, "metadata.json": 64 * 1024, "model.weights.h5": 256 * 1024**2}
MAX_MODEL_MEMBERS = len(MODEL_MEMBERS)
MAX_MODEL_UNCOMPRESSED_BYTES = 256 * 1024**2 + 2 * 1024**2
MAX_ZIP_DIRECTORY_BYTES = 64 * 1024  # the central directory of three members is about 200 bytes
# The model's configuration, checked before Keras builds anything from it.
MAX_MODEL_PARAMETERS = 20_000_000  # the lesson's model has 266,610; 80 MB of float32 weights
MAX_MODEL_LAYERS = 64
MAX_CONFIG_DEPTH = 32  # a functional model's configuration nests 11 deep, a model in a model 4 more
MAX_CONFIG_ITEMS = 100_000  # the lesson's model: about 300
# A configuration's numbers must never carry weights fitted elsewhere (a Constant's value, a RandomNormal's
# mean with a stddev of 0, a Rescaling's scales as a Dense layer's activation), which a learning rate of 0
# keeps: its lists hold 1024 values in all (the lesson's, about 30); initializers and their kin take numbers
# only; an activation is a name, a function or an activation layer.
MAX_CONFIG_LIST = 1024
_NUMBERS_ONLY = {"keras.initializers", "keras.regularizers", "keras.constraints"}
_ACTIVATION_LAYERS = {"ReLU", "Softmax", "LeakyReLU", "ELU"}
MAX_WEIGHT_OBJECTS = 4096  # groups and arrays in model.weights.h5: about 20 for the lesson's model

_LAYERS = {
    # what a student of a 300-100-10 dense network could plausibly put in it; never anything that
    # runs code or reads files (Lambda, StringLookup, TextVectorization, ...)
    "InputLayer", "Flatten", "Dense", "Dropout", "AlphaDropout", "GaussianDropout", "GaussianNoise",
    "Activation", "ReLU", "Softmax", "LeakyReLU", "ELU", "PReLU",
    "BatchNormalization", "LayerNormalization", "Reshape", "Rescaling", "Normalization",
}  # fmt: skip
_PER_FEATURE_LAYERS = {"PReLU", "BatchNormalization", "LayerNormalization", "Normalization"}
_MODELS = {("keras", "Sequential"), ("keras", "Model"), ("keras.src.models.functional", "Functional")}
ALLOWED_CLASSES: dict[str, frozenset[str]] = {
    # module (as Keras writes it in config.json) → the classes allowed from it
    "keras": frozenset({"Sequential", "Model", "DTypePolicy", "FloatDTypePolicy"}),
    "keras.src.models.functional": frozenset({"Functional"}),
    "keras.layers": frozenset(_LAYERS),
    "keras.initializers": frozenset({
        "GlorotUniform", "GlorotNormal", "HeNormal", "HeUniform", "LecunNormal", "LecunUniform",
        "RandomNormal", "RandomUniform", "TruncatedNormal", "VarianceScaling", "Orthogonal",
        "Identity", "Zeros", "Ones", "Constant",
    }),
    "keras.regularizers": frozenset({"L1", "L2", "L1L2"}),
    "keras.constraints": frozenset({"MaxNorm", "MinMaxNorm", "NonNeg", "UnitNorm"}),
    "keras.optimizers": frozenset({
        "SGD", "Adam", "AdamW", "Adamax", "Nadam", "RMSprop", "Adagrad", "Adadelta", "Ftrl", "Lion", "Adafactor",
    }),
    "keras.optimizers.schedules": frozenset({
        "ExponentialDecay", "PiecewiseConstantDecay", "InverseTimeDecay", "PolynomialDecay",
        "CosineDecay", "CosineDecayRestarts",
    }),
    "keras.losses": frozenset({
        "SparseCategoricalCrossentropy", "CategoricalCrossentropy", "BinaryCrossentropy",
        "CategoricalFocalCrossentropy", "MeanSquaredError", "MeanAbsoluteError", "KLDivergence",
        "CategoricalHinge", "Huber",
    }),
    "keras.metrics": frozenset({
        "SparseCategoricalAccuracy", "CategoricalAccuracy", "Accuracy", "SparseTopKCategoricalAccuracy",
        "TopKCategoricalAccuracy", "SparseCategoricalCrossentropy", "CategoricalCrossentropy", "Mean",
        "MeanSquaredError", "Precision", "Recall",  # not AUC: its num_thresholds sizes its variables
    }),
}  # fmt: skip
# Keras's own functions (a loss, metric or activation passed as a function) are saved as
# {"module": "builtins", "class_name": "function", "config": <name>}: allowed when the name is one
# of these modules' functions, and nothing else from builtins.
FUNCTION_MODULES = ("losses", "metrics", "activations")
_NOT_MODELING_FUNCTIONS = {"get", "serialize", "deserialize"}
_FUNCTION_NAME = re.compile(r"[a-z][a-z0-9_]{0,63}")
# Keras's own markers for values that are not objects; the others (__lambda__, __numpy__, ...) are refused.
_MARKERS = {"__keras_tensor__"}


def keras_function(name: Any) -> bool:
    """Whether ``{"module": "builtins", "class_name": "function", "config": name}`` names one of
    Keras's own losses, metrics or activations, and only such functions, wherever Keras looks.

    Keras resolves such a name in each of its built-in modules (losses, metrics, activations, but
    also optimizers, initializers, ... where ``get`` and ``deserialize`` live): every object it
    could find must be a loss, metric or activation function defined by Keras.
    """
    if not (isinstance(name, str) and _FUNCTION_NAME.fullmatch(name)) or name in _NOT_MODELING_FUNCTIONS:
        return False
    import keras

    allowed = []
    for module_name in FUNCTION_MODULES:
        candidate = getattr(getattr(keras, module_name), name, None)
        if (
            isinstance(candidate, types.FunctionType)
            and isinstance(candidate.__module__, str)
            and candidate.__module__.startswith(tuple(f"keras.src.{m}" for m in FUNCTION_MODULES))
        ):
            allowed.append(candidate)
    if not allowed:
        return False
    try:  # what Keras itself would resolve the name to (serialization_lib._retrieve_class_or_fn)
        from keras.src.api_export import get_symbol_from_name
        from keras.src.saving.serialization_lib import BUILTIN_MODULES
    except ImportError:  # another Keras: the public lookup above is all there is
        return True
    found = [get_symbol_from_name(f"keras.{module}.{name}") for module in sorted(BUILTIN_MODULES)]
    return all(any(obj is ok for ok in allowed) for obj in found if obj is not None)


def _is_keras_function_object(config: dict) -> bool:
    return (
        config.get("module") == "builtins"
        and config.get("class_name") == "function"
        and config.get("registered_name") in (None, "function", config.get("config"))
        and set(config) <= {"module", "class_name", "config", "registered_name"}
        and keras_function(config.get("config"))
    )


def keras_modules_only(config: Any) -> None:
    """Refuse a model configuration that names any module outside Keras (no import on its word);
    the one exception is Keras's own form for its loss, metric and activation functions."""
    if isinstance(config, dict):
        if _is_keras_function_object(config):
            return
        module = config.get("module")
        if module is not None and not (isinstance(module, str) and (module == "keras" or module.startswith("keras."))):
            raise ArtifactError(f"the model refers to code outside Keras (module {str(module)[:80]!r})")
        if config.get("registered_name") not in (None, config.get("class_name")) and "class_name" in config:
            raise ArtifactError(f"the model uses a custom object {str(config.get('registered_name'))[:80]!r}")
        for value in config.values():
            keras_modules_only(value)
    elif isinstance(config, list):
        for value in config:
            keras_modules_only(value)


def validate_model_config(config: Any) -> None:
    """Refuse, before Keras sees it, a model configuration (``config.json`` of a ``.keras`` file)
    that names a class outside ``ALLOWED_CLASSES``, a function that is not one of Keras's losses,
    metrics or activations, or that would build a model too large for the grader."""
    if not isinstance(config, dict) or (config.get("module"), config.get("class_name")) not in _MODELS:
        raise ArtifactError("the model's configuration does not describe a Keras Sequential or functional model")
    keras_modules_only(config)
    facts = {"items": 0, "layers": 0, "features": 1, "dense": [], "per_feature": 0, "listed": 0}
    _walk_config(config, 0, facts)
    if facts["layers"] > MAX_MODEL_LAYERS:
        raise ArtifactError(f"the model has more than {MAX_MODEL_LAYERS} layers")
    features = facts["features"]  # no layer's input can be wider than the widest shape or layer
    parameters = sum((features + bias) * units for units, bias in facts["dense"]) + 4 * features * facts["per_feature"]
    if parameters > MAX_MODEL_PARAMETERS:
        raise ArtifactError(
            f"the model could have up to {parameters:,} parameters, more than the {MAX_MODEL_PARAMETERS:,} "
            "the grader loads (the lesson's model has 266,610)"
        )


def _walk_config(item: Any, depth: int, facts: dict, shape: bool = True) -> None:
    """Check every object in the configuration; gather what bounds the model's size. Every list of
    integers counts as a shape (conservative: a layer's input is never wider than the widest one),
    except a learning-rate schedule's step boundaries."""
    facts["items"] += 1
    if facts["items"] > MAX_CONFIG_ITEMS:
        raise ArtifactError(f"the model's configuration has more than {MAX_CONFIG_ITEMS:,} items")
    if depth > MAX_CONFIG_DEPTH:
        raise ArtifactError("the model's configuration is nested too deeply")
    if isinstance(item, list):
        facts["listed"] += sum(not isinstance(value, list) for value in item)
        if facts["listed"] > MAX_CONFIG_LIST:
            raise ArtifactError(f"the model's configuration holds more than {MAX_CONFIG_LIST:,} values in lists, "
                                "more than a model of this lesson needs")
        if shape and item and all(x is None or (isinstance(x, int) and not isinstance(x, bool)) for x in item):
            facts["features"] = max(facts["features"], math.prod(max(abs(x), 1) for x in item if x is not None))
        for value in item:
            _walk_config(value, depth + 1, facts)
        return
    if not isinstance(item, dict):
        if not (item is None or isinstance(item, (bool, int, float, str))):
            raise ArtifactError("the model's configuration holds a value that is not plain JSON")
        return
    schedule = False
    if "class_name" in item:
        _check_object(item, facts)
        if _is_keras_function_object(item):
            return
        schedule = item.get("class_name") == "PiecewiseConstantDecay"
    for key, value in item.items():
        if not isinstance(key, str):
            raise ArtifactError("the model's configuration holds a value that is not plain JSON")
        if schedule and key == "config" and isinstance(value, dict):
            facts["items"] += 1
            for inner_key, inner in value.items():
                _walk_config(inner, depth + 2, facts, shape=inner_key != "boundaries")
        else:
            _walk_config(value, depth + 1, facts)


def _check_object(item: dict, facts: dict) -> None:
    module, class_name = item.get("module"), item.get("class_name")
    if class_name == "function":
        if not _is_keras_function_object(item):
            raise ArtifactError(
                f"the model uses a function {str(item.get('config'))[:80]!r} that is not one of Keras's "
                "losses, metrics or activations"
            )
        return
    if class_name in _MARKERS and module is None:
        return
    if not (isinstance(module, str) and isinstance(class_name, str) and class_name in ALLOWED_CLASSES.get(module, ())):
        raise ArtifactError(
            f"the model uses {str(module)[:60]}.{str(class_name)[:60]}, which the grader does not load: a model "
            "of this lesson is built from Keras's Flatten, Dense, Dropout, activation and normalization layers"
        )
    if module == "keras.layers" or (module, class_name) in _MODELS:
        facts["layers"] += 1
    inner = item.get("config")
    if module in _NUMBERS_ONLY and isinstance(inner, dict) and any(isinstance(v, (list, dict)) for v in inner.values()):
        raise ArtifactError(f"the model's {class_name} holds more than numbers (a list of them): an initializer, "
                            "regularizer or constraint may take numbers, never weights of its own")
    activation = inner.get("activation") if module == "keras.layers" and isinstance(inner, dict) else None
    if isinstance(activation, dict) and activation.get("class_name") != "function" and not (
        activation.get("module") == "keras.layers" and activation.get("class_name") in _ACTIVATION_LAYERS
    ):
        raise ArtifactError(f"a layer's activation is a {str(activation.get('class_name'))[:60]}: an activation is "
                            "a name ('relu'), one of Keras's activation functions, or an activation layer")
    if module == "keras.layers" and isinstance(inner, dict):
        if class_name == "Dense":
            units = inner.get("units")
            if not (isinstance(units, int) and not isinstance(units, bool) and units >= 1):
                raise ArtifactError("a Dense layer of the model has no valid number of units")
            facts["dense"].append((units, 1 if inner.get("use_bias", True) else 0))
            facts["features"] = max(facts["features"], units)
        elif class_name in _PER_FEATURE_LAYERS:
            facts["per_feature"] += 1


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
