"""The model checks: ``model_architecture``, ``parameter_counts``, ``compile`` and ``predict_labels``.

They judge the models the student's functions built and compiled (as ``Artifacts`` carry them,
never run), and the class ids ``predict_labels`` gave for the kit's reference model.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from autograder.data.inputs import PREDICT_SAMPLE
from autograder.errors import CheckFailed
from autograder.i18n import _
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
        problems.append(_(
            "there is no Flatten layer: start with keras.layers.Flatten() so that each 28×28 image becomes "
            "784 numbers"
        ))
    if len(steps) != len(EXPECTED_LAYERS):
        described = " → ".join(step.describe() for step in steps) or _("none")
        return [*problems, _("the model has {count} layers ({described}); expected {wanted}").format(
            count=len(steps), described=described, wanted=wanted)]
    for position, (step, (kind, units, activation)) in enumerate(zip(steps, EXPECTED_LAYERS), start=1):
        if step.kind != kind:
            if kind != "Flatten" or any(s.kind == "Flatten" for s in steps):
                problems.append(_("layer {position} is {layer}, expected {kind}").format(
                    position=position, layer=step.describe(), kind=kind))
            continue
        if kind != "Dense":
            continue
        if step.units != units:
            problems.append(_("layer {position} has {units} units, expected {expected}").format(
                position=position, units=step.units, expected=units))
        if step.activation != activation:
            if activation == "softmax":
                problems.append(_(
                    "the output layer has activation {activation}: use activation='softmax' so that the "
                    "ten outputs are class probabilities"
                ).format(activation=repr(step.activation)))
            else:
                problems.append(_("layer {position} (Dense {units}) has activation {activation}, expected 'relu'")
                                .format(position=position, units=units, activation=repr(step.activation)))
    return problems


def shape_problems(model) -> list[str]:
    try:
        input_shape, output_shape = tuple(model.input_shape), tuple(model.output_shape)
    except Exception:
        return [_("the model has no input shape, so it is built only once it sees data: start with "
                  "keras.Input(shape=(28, 28))")]
    problems = []
    if input_shape != (None, 28, 28):
        problems.append(_(
            "the model's input shape is {shape}; expected (None, 28, 28): keras.Input(shape=(28, 28))"
        ).format(shape=input_shape))
    if output_shape != (None, 10):
        problems.append(_("the model's output shape is {shape}; expected (None, 10)").format(shape=output_shape))
    return problems


def check_model_architecture(ev: Evidence) -> str:
    model = built_model(ev)
    problems = layer_problems(network(model)) + shape_problems(model)
    if problems:
        raise CheckFailed(_("{problems} (the model must be {wanted})").format(
            problems="; ".join(problems), wanted=wanted_network()))
    return _("{wanted}; input (None, 28, 28), output (None, 10)").format(wanted=wanted_network())


def check_parameter_counts(ev: Evidence) -> str:
    model = built_model(ev)
    try:
        counts = [parameters(step) for step in network(model)]
    except CheckFailed:
        raise
    except Exception:
        raise CheckFailed(_(
            "the model is not built (no input shape), so it has no parameters yet: add keras.Input(shape=(28, 28))"
        )) from None
    total = sum(counts)
    if counts != EXPECTED_PARAMETERS or total != sum(EXPECTED_PARAMETERS):
        raise CheckFailed(_(
            "parameters per layer are {counts} (total {total}); expected {expected} "
            "(total {expected_total}): see the table of section 6"
        ).format(counts=counts, total=f"{total:,}", expected=EXPECTED_PARAMETERS,
                 expected_total=f"{sum(EXPECTED_PARAMETERS):,}"))
    return _("0 / 235,500 / 30,100 / 1,010 parameters, 266,610 in all")


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


def metric_names(metrics: Any, depth: int = 0) -> list[str]:
    """The names of compile settings' metrics, as a list, per output (a dict) or per output in lists."""
    if isinstance(metrics, dict) and "class_name" not in metrics and depth < 4:
        return [name for value in metrics.values() for name in metric_names(value, depth + 1)]
    names = []
    for metric in metrics if isinstance(metrics, (list, tuple)) else [metrics]:
        if isinstance(metric, (list, tuple, dict)) and not (isinstance(metric, dict) and "class_name" in metric):
            names.extend(metric_names(metric, depth + 1) if depth < 4 else [])
        elif isinstance(metric, str):
            names.append(metric)
        elif isinstance(metric, dict) and metric.get("class_name") == "function":  # keras.metrics.<a function>
            names.append(str(metric.get("config")))
        elif isinstance(metric, dict):
            names.append(str(metric.get("class_name") or metric.get("config", {}).get("name")))
        elif metric is not None:
            names.append(type(metric).__name__)
    return names


def accuracy_keys(compile_config: Any) -> set[str]:
    """The names under which these compile settings' accuracy is recorded in a history: Keras's, and
    the name given to a ``SparseCategoricalAccuracy(name=...)``."""
    keys = set(ACCURACY_NAMES)
    metrics = compile_config.get("metrics") if isinstance(compile_config, dict) else None
    for metric in metrics if isinstance(metrics, (list, tuple)) else [metrics]:
        if isinstance(metric, dict) and metric.get("class_name") == "SparseCategoricalAccuracy":
            name = (metric.get("config") or {}).get("name")
            if isinstance(name, str):
                keys.add(name)
    return keys


# Below it, 30 epochs of SGD leave the weights where they started: a model whose weights came from elsewhere
# would keep them. The lesson's rate is 0.01; a student's 0.001 still learns.
MIN_LEARNING_RATE = 1e-6


def learning_rate(optimizer) -> float | None:
    """The optimizer's learning rate, or a schedule's largest (its first, or its largest value); None where
    neither is a number."""
    try:
        rate = optimizer.get_config().get("learning_rate")
    except Exception:
        return None
    if isinstance(rate, dict):  # a schedule, as Keras writes it
        config = rate.get("config") if isinstance(rate.get("config"), dict) else {}
        values = [config.get("initial_learning_rate"), config.get("warmup_target"), *(config.get("values") or [])]
        numbers = [float(value) for value in values if isinstance(value, (int, float))]
        return max(numbers) if numbers else None
    return float(rate) if isinstance(rate, (int, float)) else None


def compile_problems(compiled) -> list[str]:
    """Every mistake of the compile settings, each in the student's terms."""
    problems = []
    name, from_logits = loss_name(compiled.loss)
    if name in ("categorical_crossentropy", "CategoricalCrossentropy"):
        problems.append(_(
            "categorical_crossentropy expects one-hot labels, but these labels are integers 0–9: "
            "use loss='sparse_categorical_crossentropy'"
        ))
    elif name not in (SPARSE_LOSS, "SparseCategoricalCrossentropy"):
        problems.append(_("the loss is {name}; use loss='sparse_categorical_crossentropy' for integer class labels")
                        .format(name=repr(name)))
    elif from_logits:
        problems.append(_(
            "the loss has from_logits=True, but the output layer already applies softmax: drop from_logits"
        ))
    optimizer = type(compiled.optimizer).__name__
    if optimizer != "SGD":
        problems.append(_("the optimizer is {optimizer}; the lesson uses stochastic gradient descent: "
                          "optimizer='sgd'").format(optimizer=optimizer))
    rate = learning_rate(compiled.optimizer)
    if rate is not None and not rate >= MIN_LEARNING_RATE * (1 - 1e-6):  # as float32 holds 1e-6, too
        problems.append(_("the learning rate is {rate}: at that rate the model learns nothing in its epochs; "
                          "leave SGD's default, 0.01").format(rate=rate))
    config = compiled.get_compile_config()
    metrics = metric_names([config.get("metrics"), config.get("weighted_metrics")])
    if not ACCURACY_NAMES & set(metrics):
        problems.append(_("the metrics are {metrics}; add metrics=['accuracy']").format(metrics=metrics or _("none")))
    return problems


def check_compile(ev: Evidence) -> str:
    ev.produced("compile", model="compiled")
    compiled = ev.artifacts.models["compiled"]
    problems = compile_problems(compiled)
    if ev.artifacts.values.get("compile_returned_none") is True:
        problems.insert(0, _("`compile_model` returned None: compile the model and `return model`"))
    if problems:
        raise CheckFailed("; ".join(problems))
    return _("sparse categorical cross-entropy, SGD, accuracy")


# How far below the largest probability an image's class may be and still be its arg-max: the student's
# process computes the same predictions with its own threads, whose sums round in another order, so a
# near tie can fall either way (float32 probabilities round at about 1e-7).
TIE_TOLERANCE = 1e-5


def disagreements(predicted: np.ndarray, probabilities: np.ndarray) -> int:
    """How many class ids are not the arg-max of their image's probabilities, a near tie counting as either."""
    valid = (predicted >= 0) & (predicted < probabilities.shape[-1])
    chosen = np.take_along_axis(probabilities, np.where(valid, predicted, 0)[:, None], axis=-1)[:, 0]
    return int(np.sum(~valid | (chosen < probabilities.max(axis=-1) - TIE_TOLERANCE)))


def check_predict_labels(ev: Evidence) -> str:
    ev.produced("predict_labels")
    from autograder.data.reference import prediction_model

    model = prediction_model()  # the same model the probe gave the student's function
    images = ev.data.X_test[:PREDICT_SAMPLE]
    predicted = ev.array("predict_output")
    if predicted.shape == (len(images), 10):
        raise CheckFailed(_(
            "`predict_labels` returned probabilities (ten per image): return the class ids, "
            "np.argmax(model.predict(images), axis=-1)"
        ))
    if predicted.shape == ():
        raise CheckFailed(_(
            "`predict_labels` returned one number: without axis=-1, np.argmax takes the arg-max of all the "
            "predictions at once; use np.argmax(model.predict(images), axis=-1)"
        ))
    if predicted.shape != (len(images),):
        raise CheckFailed(_(
            "`predict_labels` returned shape {shape}; expected one class id per image, ({count},)"
        ).format(shape=predicted.shape, count=len(images)))
    if not np.issubdtype(predicted.dtype, np.integer):
        raise CheckFailed(_(
            "`predict_labels` returned {dtype} values: return integer class ids (np.argmax gives them)"
        ).format(dtype=predicted.dtype))
    wrong = disagreements(predicted, np.asarray(model.predict(images, verbose=0)))
    if wrong and not disagreements(predicted, np.asarray(model.predict(images / 255.0, verbose=0))):
        raise CheckFailed(_(
            "`predict_labels` scales the images again: it is given images that are already normalized, "
            "so pass them to model.predict as they are"
        ))
    if wrong:
        raise CheckFailed(_(
            "{wrong} of {count} class ids differ from the arg-max of the model's predictions: "
            "use np.argmax(model.predict(images), axis=-1)"
        ).format(wrong=wrong, count=len(images)))
    return _("integer class ids equal to the arg-max of the model's predictions")
