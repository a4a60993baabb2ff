"""The network a model computes: its layers in the order data flows through them, activations folded in.

The architecture checks judge what the network computes, not how the Python code listed its
layers: a ``Sequential`` of layers, one built with ``model.add``, ``Flatten(input_shape=...)``, an
explicit ``InputLayer`` or the Functional API (``keras.Input`` → layers → ``keras.Model``) are the
same network when the same layers compute in the same order; an activation given as a string, as a
function (``keras.activations.relu``) or as a separate ``Activation``/``ReLU``/``Softmax`` layer
after a ``Dense`` without one is that ``Dense`` layer's activation.

The model is one the sandbox's child handed over (loaded by ``autograder.sandbox.model_archive``:
allow-listed classes, at most ``MAX_MODEL_LAYERS`` layers) or, in a self-check, the student's own.
Its configuration is a claim: the walk along a Functional model's graph is bounded by its number
of layers, refuses a layer named twice, a cycle and a branch, and reads only names and lists.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from autograder.errors import CheckFailed
from autograder.i18n import N_, _

MAX_NESTED_MODELS = 4  # a model used as a layer of a model, as deep as this
MAX_LAYERS = 256
ACTIVATION_LAYERS = ("Activation", "ReLU", "Softmax")
SEQUENCE = (list, tuple)  # get_config gives tuples where the saved config.json has lists
NOT_A_CHAIN = N_(
    "the model is not one chain of layers from its input to its output: each layer must take the output "
    "of the layer before it"
)


@dataclass
class Step:
    """One computing layer of the network, with the activation layers that follow it folded in."""

    kind: str  # "Flatten", "Dense", or the class of any other layer
    units: int | None = None
    activation: str | None = None  # of a Dense layer: "linear" when it has none
    layers: list = field(default_factory=list)  # the Keras layers this step is made of

    def describe(self) -> str:
        return f"Dense({self.units}, {self.activation})" if self.kind == "Dense" else self.kind


def activation_name(layer) -> str | None:
    """What an activation layer or a layer's ``activation`` computes: "relu", "softmax", "linear"..."""
    kind = type(layer).__name__
    if kind == "ReLU":
        plain = getattr(layer, "max_value", None) is None and not getattr(layer, "negative_slope", 0)
        return "relu" if plain and not getattr(layer, "threshold", 0) else "ReLU(with options)"
    if kind == "Softmax":
        return "softmax" if getattr(layer, "axis", -1) in (-1, [-1], (-1,)) else "Softmax(on another axis)"
    activation = getattr(layer, "activation", None)
    if type(activation).__name__ in ("ReLU", "Softmax"):  # a layer given as a Dense layer's activation
        return activation_name(activation)
    return getattr(activation, "__name__", None) if activation is not None else None


def _single_reference(entry: dict) -> str:
    """The one layer whose output a Functional layer's configuration says it takes."""
    nodes = entry.get("inbound_nodes")
    if not isinstance(nodes, SEQUENCE) or len(nodes) != 1 or not isinstance(nodes[0], dict):
        raise CheckFailed(_(NOT_A_CHAIN))
    args = nodes[0].get("args")
    if isinstance(args, SEQUENCE) and len(args) == 1 and isinstance(args[0], SEQUENCE):
        args = args[0]  # a layer called on a list of one tensor
    if not isinstance(args, SEQUENCE) or len(args) != 1 or not isinstance(args[0], dict):
        raise CheckFailed(_(NOT_A_CHAIN))
    history = (args[0].get("config") or {}).get("keras_history") if isinstance(args[0].get("config"), dict) else None
    if not isinstance(history, SEQUENCE) or not history or not isinstance(history[0], str):
        raise CheckFailed(_(NOT_A_CHAIN))
    return history[0]


def _endpoint(value: Any) -> str:
    """The one input or output layer's name: ``["name", 0, 0]`` or ``[["name", 0, 0]]``."""
    if isinstance(value, SEQUENCE) and len(value) == 1 and isinstance(value[0], SEQUENCE):
        value = value[0]
    if isinstance(value, SEQUENCE) and value and isinstance(value[0], str):
        return value[0]
    raise CheckFailed(_("the model must have one input (keras.Input(shape=(28, 28))) and one output"))


def functional_chain(model, config: dict) -> list:
    """A Functional model's layers from its input to its output, or CheckFailed when they are not a chain."""
    entries = config.get("layers")
    if not isinstance(entries, SEQUENCE) or len(entries) > MAX_LAYERS:
        raise CheckFailed(_(NOT_A_CHAIN))
    by_name: dict[str, dict] = {}
    for entry in entries:
        name = entry.get("name") if isinstance(entry, dict) else None
        if not isinstance(name, str) or name in by_name:
            raise CheckFailed(_(NOT_A_CHAIN))
        by_name[name] = entry
    first, current = _endpoint(config.get("input_layers")), _endpoint(config.get("output_layers"))
    path: list[str] = []
    while True:
        if current not in by_name or current in path or len(path) > len(by_name):
            raise CheckFailed(_(NOT_A_CHAIN))
        path.append(current)
        if current == first:
            break
        current = _single_reference(by_name[current])
    if len(path) != len(by_name):  # a layer off the way from the input to the output: a branch
        raise CheckFailed(_(NOT_A_CHAIN))
    layers = {layer.name: layer for layer in model.layers}
    if set(layers) != set(path):
        raise CheckFailed(_(NOT_A_CHAIN))
    return [layers[name] for name in reversed(path)]


def layer_chain(model, depth: int = 0) -> list:
    """The model's layers in the order data flows through them, models used as layers opened up."""
    import keras

    if depth > MAX_NESTED_MODELS:
        raise CheckFailed(_("the model holds models nested too deeply: build one model of layers"))
    layers = list(model.layers)
    if not isinstance(model, keras.Sequential):
        try:
            config = model.get_config()
        except Exception:
            config = None
        if isinstance(config, dict) and "input_layers" in config:
            layers = functional_chain(model, config)
    chain = []
    for layer in layers:
        if isinstance(layer, keras.Model):
            chain.extend(layer_chain(layer, depth + 1))
        elif type(layer).__name__ != "InputLayer":
            chain.append(layer)
        if len(chain) > MAX_LAYERS:
            raise CheckFailed(_("the model has more than {count} layers").format(count=MAX_LAYERS))
    return chain


def network(model) -> list[Step]:
    """The computing steps of the model: Flatten, Dense with its activation, and any other layer."""
    steps: list[Step] = []
    for layer in layer_chain(model):
        kind = type(layer).__name__
        previous = steps[-1] if steps else None
        if kind in ACTIVATION_LAYERS and previous is not None and previous.kind == "Dense":
            if previous.activation in ("linear", None):
                previous.activation = activation_name(layer)
                previous.layers.append(layer)
                continue
        if kind == "Dense":
            steps.append(Step("Dense", int(layer.units), activation_name(layer) or "linear", [layer]))
        elif kind == "Reshape" and tuple(getattr(layer, "target_shape", ()) or ()) in ((784,), (-1,)):
            steps.append(Step("Flatten", layers=[layer]))  # computes what Flatten computes on 28×28 images
        elif kind in ACTIVATION_LAYERS:
            steps.append(Step(f"{kind}({activation_name(layer)})", layers=[layer]))
        else:
            steps.append(Step(kind, layers=[layer]))
    return steps


def parameters(step: Step) -> int:
    return sum(int(layer.count_params()) for layer in step.layers)
