"""The checks: one record per check id of the contract, each with the function that decides it.

A check is data (id, points, hidden, description) plus a function taking the ``Evidence`` —
what the submission's functions produced on the kit's inputs (``autograder.sandbox.probe.Artifacts``)
and the kit's own data — and returning a message on success or raising ``CheckFailed`` with a
message that names the mistake in the student's terms. Checks never call student code: they run
in the trusted grader and judge plain data. Points come only from ``CHECKS`` below.

Each probe fed the student's function the kit's own inputs (``ReferenceData``, the kit's
reference model), so one mistake costs points where it is made and not again in every later step.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from autograder.assignment import BATCH_SIZE, EPOCHS, N_VALID
from autograder.data.fashion_mnist import CLASS_NAMES
from autograder.judge.svg_figure import read_svg_figure_checked as read_svg_figure
from autograder.data.inputs import NORMALIZE_SAMPLE, PREDICT_SAMPLE, SPLIT_SMALL
from autograder.sandbox.probe import Artifacts

MIN_TEST_ACCURACY = 0.85  # the one place the accuracy bar is set
EXPECTED_LAYERS = (("Flatten", None, None), ("Dense", 300, "relu"), ("Dense", 100, "relu"), ("Dense", 10, "softmax"))
EXPECTED_PARAMETERS = [0, 235500, 30100, 1010]
SPARSE_LOSS = "sparse_categorical_crossentropy"
ACCURACY_NAMES = {"accuracy", "acc", "sparse_categorical_accuracy", "SparseCategoricalAccuracy"}


class CheckFailed(Exception):
    """A check did not pass; the message says what to fix."""


class NotDone(CheckFailed):
    """The student has not written this function yet (the stub still raises NotImplementedError)."""


@dataclass(frozen=True)
class Check:
    id: str
    points: int
    hidden: bool
    description: str
    run: Callable[["Evidence"], str] = field(repr=False, compare=False)
    needs_training: bool = False


@dataclass(frozen=True)
class CheckResult:
    id: str
    points: int
    max_points: int
    passed: bool
    message: str
    skipped: bool = False
    not_done: bool = False

    def to_json(self) -> dict:
        # Exactly the fields of the contract's JSON report.
        return {
            "id": self.id,
            "points": self.points,
            "max_points": self.max_points,
            "passed": self.passed,
            "message": self.message,
        }


@dataclass
class Evidence:
    """What a check may look at: the artifacts (what the student's code produced), the kit's data,
    and the trainer's record of the training (``autograder.trainer.service``: facts, not claims)."""

    artifacts: Artifacts
    data: Any  # autograder.data.reference.ReferenceData, with the test labels the student never sees
    training: Any = None  # autograder.trainer.service.TrainingRecord

    def produced(self, probe: str, *, model: str | None = None) -> None:
        """Fail the check with the probe's own message when the student's function produced nothing."""
        if probe in self.artifacts.not_done:
            raise NotDone(self.artifacts.errors[probe])
        if probe in self.artifacts.errors:
            raise CheckFailed(self.artifacts.errors[probe])
        if model is not None:
            problem = self.artifacts.errors.get(f"model:{model}")
            if problem:
                raise CheckFailed(problem)
            if model not in self.artifacts.models:
                raise CheckFailed("the grader received no model from your code")

    def array(self, name: str) -> np.ndarray:
        if name not in self.artifacts.arrays:
            raise CheckFailed("the grader received no result from your function")
        return self.artifacts.arrays[name]


# --- the checks ---------------------------------------------------------------------------------


def check_normalize(ev: Evidence) -> str:
    ev.produced("normalize")
    images = ev.data.train_images[:NORMALIZE_SAMPLE]
    if not np.array_equal(ev.array("normalize_input_after"), images):
        raise CheckFailed(
            "`normalize` changed the array it was given: return a new array (images / 255) "
            "instead of dividing in place"
        )
    scaled = ev.array("normalize_output")
    if scaled.shape != images.shape:
        raise CheckFailed(f"`normalize` returned shape {scaled.shape}; keep the shape {images.shape}")
    if not np.issubdtype(scaled.dtype, np.floating):
        if np.array_equal(scaled, images):
            raise CheckFailed("the images are not scaled: `normalize` returned the pixels 0–255 unchanged; divide by 255")
        raise CheckFailed(
            f"`normalize` returned {scaled.dtype} values: the result must be floating point "
            "(integer division `//` or casting back to uint8 loses everything between 0 and 1)"
        )
    expected = images / 255.0
    if np.allclose(scaled, images):
        raise CheckFailed("the images are not scaled: the values still go up to 255; divide them by 255")
    if np.allclose(scaled, expected / 255.0, atol=1e-7):
        raise CheckFailed("the images are scaled twice: the values only reach 1/255; divide by 255 once")
    if not np.allclose(scaled, expected, atol=1e-6):
        raise CheckFailed(
            f"`normalize` gives values from {scaled.min():.4g} to {scaled.max():.4g}, not images / 255 "
            "(0 to 1): divide the pixels by 255 and nothing else"
        )
    return f"{scaled.dtype} values in [0, 1], equal to images / 255, input unchanged"


def check_split(ev: Evidence) -> str:
    ev.produced("split")
    X, y = ev.data.train_scaled, ev.data.train_labels
    X_train, y_train, X_valid, y_valid = (ev.array(f"split_{n}") for n in ("X_train", "y_train", "X_valid", "y_valid"))
    n_train = len(X) - N_VALID
    if X_train.shape[:1] == (N_VALID,) and X_valid.shape[:1] == (n_train,):
        raise CheckFailed(
            "the validation set came first: return ((X_train, y_train), (X_valid, y_valid)), training set first"
        )
    if X_train.shape != (n_train, 28, 28) or X_valid.shape != (N_VALID, 28, 28):
        raise CheckFailed(
            f"X_train has shape {X_train.shape} and X_valid {X_valid.shape}; expected "
            f"({n_train}, 28, 28) and ({N_VALID}, 28, 28)"
        )
    if y_train.shape != (n_train,) or y_valid.shape != (N_VALID,):
        raise CheckFailed(f"y_train has shape {y_train.shape} and y_valid {y_valid.shape}; expected ({n_train},) and ({N_VALID},)")
    for labels, original in ((y_valid, y[:N_VALID]), (y_train, y[N_VALID:])):
        if not np.issubdtype(labels.dtype, np.integer):
            if np.allclose(labels, original / 255.0):
                raise CheckFailed("the labels were divided by 255: they must stay integer classes 0–9 (scale only the images)")
            if np.array_equal(labels, original):
                raise CheckFailed(f"the labels were turned into {labels.dtype}: keep them integer classes 0–9")
    if np.array_equal(X_valid, X[-N_VALID:]):
        raise CheckFailed(f"the validation set was taken from the end: it must be the first {N_VALID} images")
    if not np.array_equal(X_valid, X[:N_VALID]):
        raise CheckFailed(
            f"the validation images are not the first {N_VALID} in their original order "
            f"(were they shuffled?): take images[:{N_VALID}]"
        )
    if not np.array_equal(X_train, X[N_VALID:]):
        raise CheckFailed(f"the training images must be all the others, in order: images[{N_VALID}:]")
    if not (np.array_equal(y_valid, y[:N_VALID]) and np.array_equal(y_train, y[N_VALID:])):
        raise CheckFailed("the labels do not match their images: split the labels exactly like the images")
    # n_valid must be honoured, not hard-coded.
    n_small, n_valid_small = SPLIT_SMALL
    lengths = ev.artifacts.values.get("split_small_lengths")
    if lengths != [n_small - n_valid_small, n_small - n_valid_small, n_valid_small, n_valid_small]:
        raise CheckFailed("`split_validation` ignores its n_valid argument: use n_valid instead of 5000")
    return f"first {N_VALID} images for validation, {n_train} for training, integer labels unchanged"


def check_samples_plot(ev: Evidence) -> str:
    ev.produced("samples_plot")
    svg = ev.artifacts.values.get("plot_svg")
    if not isinstance(svg, str):
        raise CheckFailed("the grader received no drawing of your figure")
    count, titles, axes_on = read_svg_figure(svg)
    if count != 40:
        raise CheckFailed(f"the figure shows {count} images; a 4×10 grid shows 40 (one per axes, imshow)")
    expected = [CLASS_NAMES[label] for label in ev.data.train_labels[:40]]
    if titles != expected:
        first = next((i for i, (got, want) in enumerate(zip(titles, expected)) if got != want), len(titles))
        got = titles[first] if first < len(titles) else None
        hint = " (use CLASS_NAMES[label], not the label number)" if str(got).strip().isdigit() else ""
        raise CheckFailed(
            f"image {first + 1} is titled {got!r} but shows a {expected[min(first, 39)]!r}: "
            f"title each image with the class name of its label{hint}"
        )
    if any(axes_on):
        raise CheckFailed("turn the axes off on every image (ax.axis('off'))")
    return "40 images in a 4×10 grid, each titled with its class name, axes off"


def activation_name(layer) -> str | None:
    activation = getattr(layer, "activation", None)
    return getattr(activation, "__name__", None) if activation is not None else None


def describe_layer(layer) -> str:
    kind = type(layer).__name__
    if kind == "Dense":
        return f"Dense({layer.units}, {activation_name(layer)})"
    return kind


def built_model(ev: Evidence):
    ev.produced("build_model", model="built")
    return ev.artifacts.models["built"]


def computing_layers(model) -> list:
    """The layers that compute, in order: a Functional model also lists its InputLayer."""
    return [layer for layer in model.layers if type(layer).__name__ != "InputLayer"]


def check_model_architecture(ev: Evidence) -> str:
    model = built_model(ev)
    layers = computing_layers(model)
    wanted = " → ".join(kind if units is None else f"Dense({units}, {act})" for kind, units, act in EXPECTED_LAYERS)
    kinds = [type(layer).__name__ for layer in layers]
    if "Flatten" not in kinds:
        raise CheckFailed(
            "there is no Flatten layer: start with keras.layers.Flatten() so that each 28×28 image becomes "
            f"784 numbers (expected {wanted})"
        )
    if len(layers) != len(EXPECTED_LAYERS):
        raise CheckFailed(
            f"the model has {len(layers)} layers ({' → '.join(map(describe_layer, layers))}); expected {wanted}"
        )
    for position, (layer, (kind, units, activation)) in enumerate(zip(layers, EXPECTED_LAYERS), start=1):
        if type(layer).__name__ != kind:
            raise CheckFailed(f"layer {position} is {describe_layer(layer)}, expected {kind}: the model must be {wanted}")
        if kind != "Dense":
            continue
        if layer.units != units:
            raise CheckFailed(f"layer {position} has {layer.units} units, expected {units}: the model must be {wanted}")
        got = activation_name(layer)
        if got != activation:
            if activation == "softmax":
                raise CheckFailed(
                    f"the output layer has activation {got!r}: use activation='softmax' so that the ten outputs "
                    "are class probabilities"
                )
            raise CheckFailed(f"layer {position} (Dense {units}) has activation {got!r}, expected 'relu'")
    try:
        input_shape, output_shape = tuple(model.input_shape), tuple(model.output_shape)
    except Exception:
        raise CheckFailed(
            "the model has no input shape, so Keras cannot build it: start with keras.Input(shape=(28, 28))"
        ) from None
    if input_shape != (None, 28, 28):
        raise CheckFailed(f"the model's input shape is {input_shape}; expected (None, 28, 28): keras.Input(shape=(28, 28))")
    if output_shape != (None, 10):
        raise CheckFailed(f"the model's output shape is {output_shape}; expected (None, 10)")
    return f"{wanted}; input (None, 28, 28), output (None, 10)"


def check_parameter_counts(ev: Evidence) -> str:
    model = built_model(ev)
    try:
        counts = [int(layer.count_params()) for layer in computing_layers(model)]
    except Exception:
        raise CheckFailed("the model is not built (no input shape), so it has no parameters yet: add keras.Input(shape=(28, 28))") from None
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


def check_compile(ev: Evidence) -> str:
    ev.produced("compile", model="compiled")
    compiled = ev.artifacts.models["compiled"]
    name, from_logits = loss_name(compiled.loss)
    if name in ("categorical_crossentropy", "CategoricalCrossentropy"):
        raise CheckFailed(
            "categorical_crossentropy expects one-hot labels, but these labels are integers 0–9: "
            "use loss='sparse_categorical_crossentropy'"
        )
    if name not in (SPARSE_LOSS, "SparseCategoricalCrossentropy"):
        raise CheckFailed(f"the loss is {name!r}; use loss='sparse_categorical_crossentropy' for integer class labels")
    if from_logits:
        raise CheckFailed("the loss has from_logits=True, but the output layer already applies softmax: drop from_logits")
    optimizer = type(compiled.optimizer).__name__
    if optimizer != "SGD":
        raise CheckFailed(f"the optimizer is {optimizer}; the lesson uses stochastic gradient descent: optimizer='sgd'")
    metrics = metric_names(compiled.get_compile_config().get("metrics"))
    if not ACCURACY_NAMES & set(metrics):
        raise CheckFailed(f"the metrics are {metrics or 'none'}; add metrics=['accuracy']")
    return "sparse categorical cross-entropy, SGD, accuracy"


def trained_chain(ev: Evidence) -> list:
    """The trainer's record of the fit calls that made the final model; fails with what went wrong."""
    record = ev.training
    if record is None:
        raise CheckFailed("the grader received no record of your training")
    failed = next((call for call in record.calls if not call.trained), None)
    if failed is not None:
        raise CheckFailed(f"training failed: {failed.message}")
    if record.error:
        raise CheckFailed(f"training failed: {record.error}")
    if not record.calls:
        raise CheckFailed("`train_model` never called model.fit on the model it was given")
    return record.final_chain()


def same_model_as_built(ev: Evidence, chain: list) -> None:
    """The model the trainer trained is the one ``build_model`` built, compiled as ``compile_model`` compiles."""
    from autograder.trainer.service import compile_signature, model_signature

    built, compiled = ev.artifacts.models.get("built"), ev.artifacts.models.get("compiled")
    if built is not None:
        config = without_compile(built)
        if model_signature(config) != chain[0].architecture:
            raise CheckFailed(
                "the model trained is not the one `build_model` builds: `train_model` must train the model it is "
                "given, not build another"
            )
    if compiled is not None and compile_signature(compiled.get_compile_config()) != chain[0].compile:
        raise CheckFailed(
            "the model was trained with other compile settings than `compile_model` gives: do not compile the "
            "model again in `train_model`"
        )


def without_compile(model) -> dict:
    import keras

    config = keras.saving.serialize_keras_object(model)
    config.pop("compile_config", None)
    return config


def check_training(ev: Evidence) -> str:
    ev.produced("training")
    chain = trained_chain(ev)
    record = ev.artifacts.values.get("training")
    if not isinstance(record, dict):
        raise CheckFailed("the grader received no record of your training")
    if not record.get("returned_the_history"):
        raise CheckFailed(
            f"`train_model` returned {record.get('returned')}: return the History object that model.fit returns"
        )
    history = ev.training.history()
    epochs = sum(call.epochs_run for call in chain)
    if any(call.validation_split for call in chain):
        raise CheckFailed(
            "validated on a slice of the training data (validation_split): pass validation_data=(X_valid, y_valid)"
        )
    if not any(key.startswith("val_") for key in history):
        raise CheckFailed("there is no validation data: pass validation_data=(X_valid, y_valid) to model.fit")
    missing = [key for key in ("loss", "val_loss") if key not in history]
    if not ACCURACY_NAMES & set(history) or missing:
        raise CheckFailed(f"the history records {sorted(history)}; expected loss, accuracy, val_loss and val_accuracy")
    if epochs != EPOCHS:
        raise CheckFailed(
            f"the model trained for {epochs} epochs; the assignment asks for {EPOCHS}: pass epochs=epochs to model.fit"
        )
    if any(call.validation[:2] != ["X_valid", "y_valid"] for call in chain if call.validation):
        raise CheckFailed("the model was not validated on the validation set: pass validation_data=(X_valid, y_valid)")
    if any(call.x != "X_train" or call.y != "y_train" for call in chain):
        raise CheckFailed("the model was not trained on the training set it was given: model.fit(X_train, y_train, ...)")
    if any(call.weighted for call in chain):
        raise CheckFailed("the training weighted its samples or classes: leave out sample_weight and class_weight")
    if any(call.steps_per_epoch is not None or call.batch_size not in (None, BATCH_SIZE) for call in chain):
        raise CheckFailed(
            f"each epoch must go through the training set in mini-batches of {BATCH_SIZE}: leave batch_size and "
            "steps_per_epoch at Keras's defaults"
        )
    same_model_as_built(ev, chain)
    return f"{epochs} epochs with loss, accuracy, val_loss, val_accuracy, validated on the validation set"


def check_test_accuracy(ev: Evidence) -> str:
    if "training" in ev.artifacts.not_done:
        raise NotDone(ev.artifacts.errors["training"])
    try:
        chain = trained_chain(ev)
        same_model_as_built(ev, chain)
    except CheckFailed as failure:
        raise CheckFailed(f"no model to measure: {failure}") from None
    predictions = ev.training.predictions
    if predictions is None or predictions.shape != ev.data.test_labels.shape:
        raise CheckFailed("no model to measure: the trained model gives no class for each test image")
    accuracy = float(np.mean(predictions == ev.data.test_labels))
    if accuracy < MIN_TEST_ACCURACY:
        raise CheckFailed(
            f"test accuracy {accuracy:.4f}, below the minimum {MIN_TEST_ACCURACY}: check the model, the loss, the "
            "optimizer and the number of epochs"
        )
    return f"test accuracy {accuracy:.4f} (minimum {MIN_TEST_ACCURACY}), measured by the grader"


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
        raise CheckFailed(f"`predict_labels` returned shape {predicted.shape}; expected one class id per image, ({len(images)},)")
    if not np.issubdtype(predicted.dtype, np.integer):
        raise CheckFailed(f"`predict_labels` returned {predicted.dtype} values: return integer class ids (np.argmax gives them)")
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


CHECKS: tuple[Check, ...] = (
    Check("normalize", 10, False, "images / 255 as floats in [0, 1], shape kept, input unchanged", check_normalize),
    Check("split", 10, False, "the first 5000 images are the validation set; labels stay integers", check_split),
    Check("samples_plot", 5, False, "a 4×10 grid of images titled with their class names", check_samples_plot),
    Check(
        "model_architecture",
        15,
        False,
        "Flatten → Dense(300, relu) → Dense(100, relu) → Dense(10, softmax), input 28×28",
        check_model_architecture,
    ),
    Check("parameter_counts", 10, False, "0 / 235500 / 30100 / 1010 parameters per layer", check_parameter_counts),
    Check("compile", 15, False, "sparse categorical cross-entropy, SGD, accuracy", check_compile),
    Check(
        "training",
        10,
        False,
        "30 epochs with validation on the validation set",
        check_training,
        needs_training=True,
    ),
    Check(
        "test_accuracy",
        20,
        True,
        f"test accuracy measured by the grader ≥ {MIN_TEST_ACCURACY}",
        check_test_accuracy,
        needs_training=True,
    ),
    Check("predict_labels", 5, False, "integer class ids, the arg-max of the predictions", check_predict_labels),
)
CHECKS_BY_ID = {check.id: check for check in CHECKS}
MAX_SCORE = sum(check.points for check in CHECKS)


def run_check(check: Check, ev: Evidence) -> CheckResult:
    try:
        with warnings.catch_warnings():  # Keras's warnings about a student's model are not failures
            warnings.simplefilter("ignore")
            message = check.run(ev)
    except NotDone as failure:
        return CheckResult(check.id, 0, check.points, False, str(failure), not_done=True)
    except CheckFailed as failure:
        return CheckResult(check.id, 0, check.points, False, str(failure))
    except Exception as error:  # a check tripped over something the student built: still a result
        return CheckResult(check.id, 0, check.points, False, f"could not be checked: {type(error).__name__}: {error}")
    return CheckResult(check.id, check.points, check.points, True, message)


def skipped(check: Check, why: str) -> CheckResult:
    return CheckResult(check.id, 0, check.points, False, why, skipped=True)
