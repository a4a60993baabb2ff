"""The record of one submission's training, as the kit's trainer ran it: one definition for all.

A ``FitRecord`` per ``fit`` call and the ``TrainingRecord`` that holds them are what the trainer
(``autograder.trainer.service``) reports, what the grader's desk (``autograder.trainer.desk``)
keeps for the submission, what the ``training`` and ``test_accuracy`` checks judge and what the
demo shows. ``model_signature`` and ``compile_signature`` say what a model and its compile
settings are, names aside, so that the trainer and the checks compare models the same way.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from autograder.errors import Refused
from autograder.i18n import N_, translated


@dataclass
class FitRecord:
    """One ``fit`` call as the trainer saw and ran it."""

    trained: bool
    message: str | None = None  # why it could not be trained, for the student: a catalogue message
    fields: dict[str, str] = field(default_factory=dict)  # what fills its {fields} (see errors.Refused)
    continues: bool = False  # continues the training of the call before it
    reused: bool = False  # replayed from the cache of identical trainings
    stored: bool = False  # trained and kept there, for identical calls to replay
    key: str | None = None
    epochs_run: int = 0
    history: dict[str, list[float]] = field(default_factory=dict)
    x: str | None = None  # "X_train" when it trained on the training set the kit gave train_model
    y: str | None = None  # "y_train" when its labels were those the kit gave
    batch_size: int | None = None  # as fit was given it (None: Keras's 32)
    weighted: bool = False  # sample_weight or class_weight was given
    steps_per_epoch: int | None = None
    validation: list[str | None] | None = None  # what validation_data named: ["X_valid", "y_valid"]
    validation_split: float = 0.0
    validation_steps: int | None = None  # as fit was given them: a part of the validation set
    validation_freq: int = 1  # validated every this many epochs
    architecture: Any = None  # model_signature of its configuration
    compile: Any = None  # its compile settings, names aside
    seconds: float = 0.0

    def reason(self) -> str:
        """Why it could not be trained, in the language in effect."""
        return translated(self.message or N_("the grader's trainer refused this training"), self.fields)

    @classmethod
    def from_json(cls, data: dict) -> "FitRecord":
        record = cls(**{name: data[name] for name in cls.__dataclass_fields__ if name in data})
        if not isinstance(record.message, (str, type(None))):
            record.message = str(record.message)
        fields = record.fields if isinstance(record.fields, dict) else {}
        record.fields = {str(name): str(value) for name, value in fields.items()}
        return record


def refusal(message: str, fields: dict[str, str]) -> dict:
    """The trainer's reply to a fit call it could not train: the catalogue message and its fields, for
    the student's side to say in the student's language (``autograder.sandbox.fit_client``)."""
    return {"ok": False, "message": message, "fields": dict(fields)}


@dataclass
class TrainingRecord:
    """Everything the trainer did for one submission: facts, never claims of the student's process."""

    calls: list[FitRecord] = field(default_factory=list)
    predictions: np.ndarray | None = None  # the final model's class for each test image
    error: str | None = None  # the trainer itself could not go on (time limit, crash): a catalogue message
    error_fields: dict[str, str] = field(default_factory=dict)  # what fills its {fields}

    def final_chain(self) -> list[FitRecord]:
        """The calls that made the final model: the last call and those it continues."""
        chain: list[FitRecord] = []
        for call in reversed(self.calls):
            chain.insert(0, call)
            if not call.continues:
                break
        return chain

    def history(self) -> dict[str, list[float]]:
        merged: dict[str, list[float]] = {}
        for call in self.final_chain():
            for name, values in call.history.items():
                merged.setdefault(name, []).extend(values)
        return merged

    @property
    def reused(self) -> bool:
        return any(call.reused for call in self.final_chain())

    @property
    def trainings_run(self) -> int:
        return sum(1 for call in self.calls if call.trained and not call.reused)

    @property
    def trainings_stored(self) -> int:
        return sum(1 for call in self.calls if call.stored)


# --- what a model is, names aside ------------------------------------------------------------------


def model_signature(config: Any) -> Any:
    """A model's configuration without what only names objects in one process: the names of its
    layers and of the model (``dense_3``), where they are defined and where a Functional model
    refers to them, and ``shared_object_id``. Every other field is kept, a dtype policy's name
    (``float32``, ``int32``) and an activation's among them: two models with equal signatures
    compute the same function."""
    config = json.loads(json.dumps(config, default=list))  # a copy, tuples as lists

    def own_names(model: dict) -> dict[str, str]:
        """A model's names for its own layers, each defined once, removed where defined. A model used
        as a layer has names of its own, which may repeat the outer model's: each model its own table."""
        names: dict[str, str] = {}
        inner = model.get("config")
        if isinstance(inner, dict):
            inner.pop("name", None)
            for layer in inner.get("layers") if isinstance(inner.get("layers"), list) else []:
                if isinstance(layer, dict) and isinstance(layer.get("config"), dict):
                    name = layer["config"].pop("name", None)
                    if isinstance(name, str):
                        names.setdefault(name, f"<layer {len(names)}>")
                    layer.pop("name", None)  # a Functional model's layers name themselves twice
        return names

    def walk(item: Any, names: dict[str, str]) -> Any:
        if isinstance(item, list):
            return [walk(value, names) for value in item]
        if not isinstance(item, dict):
            return item
        # A model's own names hold inside its config only: a nested model's inbound nodes, beside its
        # config, name the layers of the model around it.
        model = isinstance(item.get("config"), dict) and "layers" in item["config"]
        inner = own_names(item) if model else names
        result = {}
        for key, value in item.items():
            scope = inner if key == "config" else names
            if key == "shared_object_id":
                continue
            if key == "keras_history" and isinstance(value, list) and value:
                value = [reference(scope, value[0]), *value[1:]]
            elif key in ("input_layers", "output_layers"):
                value = wired(scope, value)
            result[key] = walk(value, scope)
        return result

    if isinstance(config, dict) and isinstance(config.get("config"), dict):
        config["config"].pop("name", None)  # the model's own name, or a compile config's
    return walk(config, {})


# TensorFlow's rules for a name scope (``tensorflow/python/framework/ops.py``): Keras's fit opens one at
# the root for the model and for its optimizer, and one inside it for each layer and for the loss. Less
# the backslash, which its scopes take and its nodes' names then refuse (and Keras's names the slash).
ROOT_SCOPE_NAME = re.compile(r"[A-Za-z0-9.][A-Za-z0-9_.>-]*")
SCOPE_NAME = re.compile(r"[A-Za-z0-9_.>-]*")


def refuse_names_tensorflow_refuses(model_config: Any, compile_config: Any) -> None:
    """Raise ``Refused`` for a name that TensorFlow refuses as a scope where Keras's ``fit`` opens one: the
    model's, a layer's or a nested model's, the optimizer's, the loss's. Keras takes any name, but its
    ``fit`` on TensorFlow fails on a layer named ``展平`` or a model named ``Fashion MNIST classifier``
    (or a learning-rate schedule named ``衰减``),
    in the student's notebook as here; the kit's fast path alone would train the second, and a stored
    training, whose key leaves names aside, would stand for the first. Metrics' names are free."""

    def names(item: Any):
        if isinstance(item, list):
            for value in item:
                yield from names(value)
        elif isinstance(item, dict) and item.get("class_name") != "InputLayer":  # fit never calls an input
            if isinstance(item.get("name"), str):
                yield item["name"]
            for value in item.values():
                yield from names(value)

    def named(item: Any) -> Any:
        inner = item.get("config") if isinstance(item, dict) else None
        return inner.get("name") if isinstance(inner, dict) else None

    def under_empty_names(item: Any):
        """The names of the layers of every model named "", at any depth: an empty name takes the scope
        back to the root."""
        if isinstance(item, list):
            for value in item:
                yield from under_empty_names(value)
        elif isinstance(item, dict):
            if item.get("name") == "" and isinstance(item.get("layers"), list):
                yield from (named(child) for child in item["layers"]
                            if isinstance(child, dict) and child.get("class_name") != "InputLayer")
            for value in item.values():
                yield from under_empty_names(value)

    compile_config = compile_config if isinstance(compile_config, dict) else {}
    if isinstance(model_config, dict):  # a saved model's compile settings beside its network: the metrics' names
        model_config = {key: value for key, value in model_config.items() if key != "compile_config"}
    optimizer = compile_config.get("optimizer")
    roots = [named(model_config), *under_empty_names(model_config), named(optimizer)]
    if named(optimizer) == "":  # an optimizer that opens no scope leaves its schedule's at the root
        roots += names(optimizer)
    # An empty name opens no scope at all.
    refused = [name for name in roots if isinstance(name, str) and name and not ROOT_SCOPE_NAME.fullmatch(name)]
    # Inside the optimizer's scope: a learning-rate schedule's.
    refused += [name for part in (model_config, compile_config.get("loss"), compile_config.get("optimizer"))
                for name in names(part) if not SCOPE_NAME.fullmatch(name)]
    if refused:
        raise Refused(N_(
            "TensorFlow cannot train a model with the name {name}: the names of a model, its layers, its "
            "optimizer, its learning-rate schedule and its loss may hold only the letters A-Z and a-z, digits and "
            "_ . - (a model's or an optimizer's not starting with _ or -): change that name= or leave it out"
        ), name=repr(refused[0][:80]))


PER_OUTPUT = ("loss", "loss_weights", "metrics", "weighted_metrics")


def compile_as_keyed(compiled: Any, network: Any) -> Any:
    """Compile settings as a training's key holds them. A loss, a loss weight or a metric given per output
    (``loss={"out": ...}``) names an output, as Keras reads it: a layer, or a key of outputs given as a
    dict, at any depth of nested models; its ``fit`` refuses a name it cannot find. Where one is given
    so, the key holds the network's configuration with its names (``network``), which decide what
    those names mean: only copies that name alike share a training."""
    if isinstance(compiled, dict) and any(isinstance(compiled.get(field), dict) for field in PER_OUTPUT):
        return {"compile": compiled, "network, names and all": network}
    return compiled


def wired(names: dict[str, str], value: Any) -> Any:
    """A model's inputs or outputs, ``[name, node, tensor]`` each, in a list or a dict (``{"probs": ...}``),
    their layers numbered."""
    if isinstance(value, dict):
        return {key: wired(names, item) for key, item in value.items()}
    if isinstance(value, list) and value and isinstance(value[0], str):
        return [reference(names, value[0]), *value[1:]]
    return [wired(names, item) for item in value] if isinstance(value, list) else value


def reference(names: dict[str, str], name: Any) -> Any:
    """A layer named in a model's wiring, as ``model_signature`` numbers the layers of that model."""
    return names.get(name, "<unknown layer>") if isinstance(name, str) else name


def compile_signature(compile_config: Any) -> Any:
    """Compile settings without the optimizer's name, which Keras numbers per process (sgd, sgd_1)."""
    signature = model_signature({"config": compile_config})["config"]
    optimizer = signature.get("optimizer") if isinstance(signature, dict) else None
    if isinstance(optimizer, dict) and isinstance(optimizer.get("config"), dict):
        optimizer["config"].pop("name", None)
    return signature
