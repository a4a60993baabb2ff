"""The model checks: ``model_architecture``, ``parameter_counts``, ``compile`` and ``predict_labels``.

They judge the models the student's functions built and compiled (as ``Artifacts`` carry them,
never run), and the class ids ``predict_labels`` gave for the kit's reference model.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from autograder.data.inputs import PREDICT_SAMPLE
from autograder.errors import CheckFailed
from autograder.judge.evidence import Evidence
from autograder.judge.network import Step, network, parameters

EXPECTED_LAYERS = (("Flatten", None, None), ("Dense", 300, "relu"), ("Dense", 100, "relu"), ("Dense", 10, "softmax"))
EXPECTED_PARAMETERS = [0, 235500, 30100, 1010]
SPARSE_LOSS = "sparse_categorical_crossentropy"
ACCURACY_NAMES = {"accuracy", "acc", "sparse_categorical_accuracy", "SparseCategoricalAccuracy"}


def built_model(ev: Evidence):
    ev.produced("build_model", model="built")
    return ev.artifacts.models["built"]


def wanted_network() -> str:
    return " → ".join(kind if units is None else f"Dense({units}, {act})" for kind, units, act in EXPECTED_LAYERS)


def layer_problems(steps: list[Step]) -> list[str]:
    """Every way the network's layers differ from the lesson's, in the student's terms."""
    wanted = wanted_network()
    problems = []
    if not any(step.kind == "Flatten" for step in steps):
        problems.append(
            "there is no Flatten layer: start with keras.layers.Flatten() so that each 28×28 image becomes "
            "784 numbers"
        )
    if len(steps) != len(EXPECTED_LAYERS):
        described = " → ".join(step.describe() for step in steps) or "none"
        return [*problems, f"the model has {len(steps)} layers ({described}); expected {wanted}"]
    for position, (step, (kind, units, activation)) in enumerate(zip(steps, EXPECTED_LAYERS), start=1):
        if step.kind != kind:
            if kind != "Flatten" or any(s.kind == "Flatten" for s in steps):
                problems.append(f"layer {position} is {step.describe()}, expected {kind}")
            continue
        if kind != "Dense":
            continue
        if step.units != units:
            problems.append(f"layer {position} has {step.units} units, expected {units}")
        if step.activation != activation:
            if activation == "softmax":
                problems.append(
                    f"the output layer has activation {step.activation!r}: use activation='softmax' so that the "
                    "ten outputs are class probabilities"
                )
            else:
                problems.append(f"layer {position} (Dense {units}) has activation {step.activation!r}, expected 'relu'")
    return problems


def shape_problems(model) -> list[str]:
    try:
        input_shape, output_shape = tuple(model.input_shape), tuple(model.output_shape)
    except Exception:
        return ["the model has no input shape, so Keras cannot build it: start with keras.Input(shape=(28, 28))"]
    problems = []
    if input_shape != (None, 28, 28):
        problems.append(
            f"the model's input shape is {input_shape}; expected (None, 28, 28): keras.Input(shape=(28, 28))"
        )
    if output_shape != (None, 10):
        problems.append(f"the model's output shape is {output_shape}; expected (None, 10)")
    return problems


def check_model_architecture(ev: Evidence) -> str:
    model = built_model(ev)
    problems = layer_problems(network(model)) + shape_problems(model)
    if problems:
        raise CheckFailed(f"{'; '.join(problems)} (the model must be {wanted_network()})")
    return f"{wanted_network()}; input (None, 28, 28), output (None, 10)"


def check_parameter_counts(ev: Evidence) -> str:
    model = built_model(ev)
    try:
        counts = [parameters(step) for step in network(model)]
    except CheckFailed:
        raise
    except Exception:
        raise CheckFailed(
            "the model is not built (no input shape), so it has no parameters yet: add keras.Input(shape=(28, 28))"
        ) from None
    total = sum(counts)
    if counts != EXPECTED_PARAMETERS or total != sum(EXPECTED_PARAMETERS):
        raise CheckFailed(
            f"parameters per layer are {counts} (total {total:,}); expected {EXPECTED_PARAMETERS} "
            f"(total {sum(EXPECTED_PARAMETERS):,}): see the table of section 6"
        )
    return "0 / 235,500 / 30,100 / 1,010 parameters, 266,610 in all"


def loss_name(loss: Any) -> tuple[str, bool]:
    """The loss's name, however it was given, and whether it expects logits."""
    if isinstance(loss, str):
        return loss, False
    from_logits = False
    get_config = getattr(loss, "get_config", None)
    if callable(get_config):
        try:
            from_logits = bool(get_config().get("from_logits", False))
        except Exception:
            pass
    if hasattr(loss, "fn"):  # a Loss object wrapping a function: SparseCategoricalCrossentropy()
        return getattr(loss.fn, "__name__", type(loss).__name__), from_logits
    return getattr(loss, "__name__", type(loss).__name__), from_logits


def metric_names(metrics: Any) -> list[str]:
    names = []
    for metric in metrics if isinstance(metrics, (list, tuple)) else [metrics]:
        if isinstance(metric, str):
            names.append(metric)
        elif isinstance(metric, dict):
            names.append(str(metric.get("class_name") or metric.get("config", {}).get("name")))
        elif metric is not None:
            names.append(type(metric).__name__)
    return names


def compile_problems(compiled) -> list[str]:
    """Every mistake of the compile settings, each in the student's terms."""
    problems = []
    name, from_logits = loss_name(compiled.loss)
    if name in ("categorical_crossentropy", "CategoricalCrossentropy"):
        problems.append(
            "categorical_crossentropy expects one-hot labels, but these labels are integers 0–9: "
            "use loss='sparse_categorical_crossentropy'"
        )
    elif name not in (SPARSE_LOSS, "SparseCategoricalCrossentropy"):
        problems.append(f"the loss is {name!r}; use loss='sparse_categorical_crossentropy' for integer class labels")
    elif from_logits:
        problems.append(
            "the loss has from_logits=True, but the output layer already applies softmax: drop from_logits"
        )
    optimizer = type(compiled.optimizer).__name__
    if optimizer != "SGD":
        problems.append(f"the optimizer is {optimizer}; the lesson uses stochastic gradient descent: optimizer='sgd'")
    metrics = metric_names(compiled.get_compile_config().get("metrics"))
    if not ACCURACY_NAMES & set(metrics):
        problems.append(f"the metrics are {metrics or 'none'}; add metrics=['accuracy']")
    return problems


def check_compile(ev: Evidence) -> str:
    ev.produced("compile", model="compiled")
    compiled = ev.artifacts.models["compiled"]
    problems = compile_problems(compiled)
    if ev.artifacts.values.get("compile_returned_none") is True:
        problems.insert(0, "`compile_model` returned None: compile the model and `return model`")
    if problems:
        raise CheckFailed("; ".join(problems))
    return "sparse categorical cross-entropy, SGD, accuracy"


def check_predict_labels(ev: Evidence) -> str:
    ev.produced("predict_labels")
    from autograder.data.reference import prediction_model

    model = prediction_model()  # the same model the probe gave the student's function
    images = ev.data.X_test[:PREDICT_SAMPLE]
    predicted = ev.array("predict_output")
    if predicted.shape == (len(images), 10):
        raise CheckFailed(
            "`predict_labels` returned probabilities (ten per image): return the class ids, "
            "np.argmax(model.predict(images), axis=-1)"
        )
    if predicted.shape != (len(images),):
        raise CheckFailed(
            f"`predict_labels` returned shape {predicted.shape}; expected one class id per image, ({len(images)},)"
        )
    if not np.issubdtype(predicted.dtype, np.integer):
        raise CheckFailed(
            f"`predict_labels` returned {predicted.dtype} values: return integer class ids (np.argmax gives them)"
        )
    expected = np.argmax(np.asarray(model.predict(images, verbose=0)), axis=-1)
    wrong = int(np.sum(predicted != expected))
    if wrong and np.array_equal(predicted, np.argmax(np.asarray(model.predict(images / 255.0, verbose=0)), axis=-1)):
        raise CheckFailed(
            "`predict_labels` scales the images again: it is given images that are already normalized, "
            "so pass them to model.predict as they are"
        )
    if wrong:
        raise CheckFailed(
            f"{wrong} of {len(images)} class ids differ from the arg-max of the model's predictions: "
            "use np.argmax(model.predict(images), axis=-1)"
        )
    return "integer class ids equal to the arg-max of the model's predictions"
