"""The configuration of a Keras model a child hands back (``config.json`` of its ``.keras`` archive), checked
before Keras builds anything from it: every object a class of the allow-list (``ALLOWED_CLASSES``) or one of
Keras's own losses, metrics and activations, every name Keras would look up one of those too, and the model
it describes small enough for the grader. ``autograder.sandbox.model_archive`` reads the archive around it.
"""

from __future__ import annotations

import functools
import math
import re
import types
from typing import Any

from autograder.errors import ArtifactError

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
        "MeanAbsoluteError", "MeanAbsolutePercentageError", "MeanSquaredLogarithmicError", "RootMeanSquaredError",
        "KLDivergence", "Poisson", "Hinge", "SquaredHinge", "CategoricalHinge", "LogCoshError", "BinaryAccuracy",
        "BinaryCrossentropy", "CosineSimilarity",
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


def _walk_config(item: Any, depth: int, facts: dict, shape: bool = True, named: str | None = None,
                 naming: bool = False) -> None:
    """Check every object in the configuration; gather what bounds the model's size. Every list of
    integers counts as a shape (conservative: a layer's input is never wider than the widest one),
    except a learning-rate schedule's step boundaries. ``named``: the Keras module a text value here is
    looked up in; ``naming``: a dict whose keys say so (an object's ``config``, a model's ``compile_config``)."""
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
            _walk_config(value, depth + 1, facts, named=named)
        return
    if not isinstance(item, dict):
        if not (item is None or isinstance(item, (bool, int, float, str))):
            raise ArtifactError("the model's configuration holds a value that is not plain JSON")
        if named and isinstance(item, str) and not named_object_allowed(named, item):
            raise ArtifactError(f"the model names {item[:60]!r} among Keras's {named}, which the grader does not "
                                "load: a model of this lesson is built and compiled from Keras's usual objects")
        return
    obj = "class_name" in item
    if obj:
        _check_object(item, facts)
        if _is_keras_function_object(item):
            return
    schedule = obj and item.get("class_name") == "PiecewiseConstantDecay"
    for key, value in item.items():
        if not isinstance(key, str):
            raise ArtifactError("the model's configuration holds a value that is not plain JSON")
        if schedule and key == "config" and isinstance(value, dict):
            facts["items"] += 1
            for inner_key, inner in value.items():
                _walk_config(inner, depth + 2, facts, shape=inner_key != "boundaries")
        elif obj:
            _walk_config(value, depth + 1, facts, naming=key in ("config", "compile_config"))
        else:  # a plain dict (losses by output, named by layers' names) is looked up where its key said
            _walk_config(value, depth + 1, facts, named=_named_module(key) if naming else named)


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


# Where Keras reads a text value as the name of one of its objects ("sgd", "he_normal", "mixed_float16"): the
# module it looks the name up in. A name must come to an allowed class or to one of Keras's own functions, as the
# object itself must ("muon" came to Muon, whose updates hang on the layers' names, which no key of a training
# holds; "int8_from_float32" to a quantized policy).
_NAMED_IN = {"optimizer": "optimizers", "loss": "losses", "metrics": "metrics", "weighted_metrics": "metrics",
             "activation": "activations", "dtype": "dtype_policies"}
_NAMED_BY_SUFFIX = {"_initializer": "initializers", "_regularizer": "regularizers", "_constraint": "constraints",
                    "_activation": "activations"}
# What `compile` reads itself, whatever the case, by the model's loss: no lookup of Keras's.
_COMPILE_SHORTHANDS = {"metrics": {"accuracy", "acc", "crossentropy", "ce"}, "losses": {"crossentropy", "ce"}}
_OBJECT_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,63}")


def _named_module(key: str) -> str | None:
    return _NAMED_IN.get(key) or next((m for end, m in _NAMED_BY_SUFFIX.items() if key.endswith(end)), None)


@functools.lru_cache(maxsize=256)
def named_object_allowed(module: str, name: str) -> bool:
    """Whether the name Keras looks up in ``keras.<module>`` comes to an allowed class or function."""
    if name.lower() in _COMPILE_SHORTHANDS.get(module, ()):
        return True
    if not _OBJECT_NAME.fullmatch(name):
        return False
    import keras

    try:
        found = getattr(keras, module).get(name)
    except Exception:  # a name Keras does not know (or one that needs what the grader lacks): it cannot load it
        return False
    if isinstance(found, types.FunctionType):
        return module in FUNCTION_MODULES and keras_function(found.__name__)
    kind = type(found)
    allowed = ALLOWED_CLASSES["keras" if module == "dtype_policies" else f"keras.{module}"]
    return kind.__module__.startswith("keras.") and kind.__name__ in allowed
