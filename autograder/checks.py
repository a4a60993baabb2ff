"""The checks: one record per check id of the contract, each with the function that decides it.

A check is data (id, points, hidden, description) plus a function taking a ``Submission`` and
returning a message on success or raising ``CheckFailed`` with a message that names the mistake
in the student's terms. Points come only from ``CHECKS`` below, never from student output.

Each check feeds the student's function the kit's own inputs (``ReferenceData``, the kit's
reference model), so one mistake costs points where it is made and not again in every later step.
"""

from __future__ import annotations

import traceback
import warnings
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from autograder.assignment import EPOCHS, N_VALID
from autograder.data import CLASS_NAMES

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
    run: Callable[["Submission"], str] = field(repr=False, compare=False)
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


class Submission:
    """What the checks look at: the student's functions, the kit's data, and (lazily) training."""

    def __init__(self, functions: dict[str, Callable | None], data, *, cell_errors=(), trainer=None, name=""):
        self.functions = functions
        self.data = data
        self.cell_errors = list(cell_errors)
        self.name = name
        self._trainer = trainer
        self._training = None

    def function(self, name: str) -> Callable:
        function = self.functions.get(name)
        if function is None:
            causes = [e for e in self.cell_errors if f"`{name}`" in e] or self.cell_errors
            why = f" ({'; '.join(causes)})" if causes else ""
            raise CheckFailed(f"`{name}` is not defined{why}: write it in its solution cell with exactly that name")
        return function

    def call(self, name: str, *args, **kwargs):
        """Call a student function; its exceptions become messages that point at the student's line."""
        function = self.function(name)
        try:
            return function(*args, **kwargs)
        except NotImplementedError:
            raise NotDone(f"not done yet: `{name}` still raises NotImplementedError; replace it with your code") from None
        except CheckFailed:
            raise
        except Exception as error:
            raise CheckFailed(describe_exception(name, error)) from None

    def training(self):
        """The student's model built, compiled and trained (once, shared by the checks that need it)."""
        if self._training is None:
            if self._trainer is None:
                raise RuntimeError("this submission was set up without training")
            self._training = self._trainer(self)
        return self._training


def describe_exception(name: str, error: BaseException) -> str:
    """`name` raised X: message, pointing at the last line of the student's notebook in the traceback."""
    where = ""
    for frame in reversed(traceback.extract_tb(error.__traceback__)):
        if frame.filename.startswith("<") and " cell " in frame.filename:
            where = f" at line {frame.lineno} of your cell ({(frame.line or '').strip()})"
            break
    if isinstance(error, NotImplementedError):
        return f"not done yet: `{name}` still raises NotImplementedError; replace it with your code"
    text = str(error).strip().splitlines()
    summary = text[0][:300] if text else ""
    return f"`{name}` raised {type(error).__name__}{where}: {summary}"


def as_array(value: Any, what: str) -> np.ndarray:
    """Plain numpy data from whatever the student returned (a Tensor, a list...), or a clear failure."""
    if value is None:
        raise CheckFailed(f"{what} returned None: add a `return` statement")
    try:
        array = np.asarray(value)
    except Exception:
        raise CheckFailed(f"{what} returned a {type(value).__name__}, which is not an array") from None
    if array.dtype == object:
        raise CheckFailed(f"{what} returned a {type(value).__name__}, which is not an array of numbers")
    return array


# --- the checks ---------------------------------------------------------------------------------


def check_normalize(sub: Submission) -> str:
    images = sub.data.train_images[:2000].copy()
    given = images.copy()
    result = sub.call("normalize", images)
    if not np.array_equal(images, given):
        raise CheckFailed(
            "`normalize` changed the array it was given: return a new array (images / 255) "
            "instead of dividing in place"
        )
    scaled = as_array(result, "`normalize`")
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


def unpack_split(result: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    shape_hint = "`split_validation` must return ((X_train, y_train), (X_valid, y_valid))"
    try:
        (X_train, y_train), (X_valid, y_valid) = result
    except (TypeError, ValueError):
        raise CheckFailed(shape_hint) from None
    return tuple(as_array(part, "`split_validation`") for part in (X_train, y_train, X_valid, y_valid))


def check_split(sub: Submission) -> str:
    X, y = sub.data.train_scaled, sub.data.train_labels
    X_train, y_train, X_valid, y_valid = unpack_split(sub.call("split_validation", X, y))
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
    X_small, _, X_valid_small, _ = unpack_split(sub.call("split_validation", X[:100], y[:100], n_valid=10))
    if X_valid_small.shape[0] != 10 or X_small.shape[0] != 90:
        raise CheckFailed("`split_validation` ignores its n_valid argument: use n_valid instead of 5000")
    return f"first {N_VALID} images for validation, {n_train} for training, integer labels unchanged"


def check_samples_plot(sub: Submission) -> str:
    from matplotlib.figure import Figure

    images, labels = sub.data.train_scaled[:60], sub.data.train_labels[:60]
    import matplotlib.pyplot as plt

    before = set(plt.get_fignums())
    try:
        fig = sub.call("plot_samples", images, labels)
        if not isinstance(fig, Figure):
            raise CheckFailed(
                f"`plot_samples` returned {type(fig).__name__}, not the Figure: create it with "
                "fig, axes = plt.subplots(...) and `return fig`"
            )
        image_axes = [ax for ax in fig.axes if ax.images]
        if len(image_axes) != 40:
            raise CheckFailed(f"the figure shows {len(image_axes)} images; a 4×10 grid shows 40 (one per axes, imshow)")
        titles = [ax.get_title() for ax in image_axes]
        expected = [CLASS_NAMES[label] for label in labels[:40]]
        if titles != expected:
            first = next(i for i, (got, want) in enumerate(zip(titles, expected)) if got != want)
            hint = " (use CLASS_NAMES[label], not the label number)" if titles[first].strip().isdigit() else ""
            raise CheckFailed(
                f"image {first + 1} is titled {titles[first]!r} but shows a {expected[first]!r}: "
                f"title each image with the class name of its label{hint}"
            )
        if any(ax.axison for ax in image_axes):
            raise CheckFailed("turn the axes off on every image (ax.axis('off'))")
        return "40 images in a 4×10 grid, each titled with its class name, axes off"
    finally:
        for number in set(plt.get_fignums()) - before:
            plt.close(number)


def activation_name(layer) -> str | None:
    activation = getattr(layer, "activation", None)
    return getattr(activation, "__name__", None) if activation is not None else None


def describe_layer(layer) -> str:
    kind = type(layer).__name__
    if kind == "Dense":
        return f"Dense({layer.units}, {activation_name(layer)})"
    return kind


def built_model(sub: Submission):
    model = sub.call("build_model")
    if model is None:
        raise CheckFailed("`build_model` returned None: `return model`")
    if not hasattr(model, "layers") or not hasattr(model, "count_params"):
        raise CheckFailed(f"`build_model` returned a {type(model).__name__}, not a Keras model")
    return model


def check_model_architecture(sub: Submission) -> str:
    model = built_model(sub)
    layers = list(model.layers)
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


def check_parameter_counts(sub: Submission) -> str:
    model = built_model(sub)
    try:
        counts = [int(layer.count_params()) for layer in model.layers]
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


def check_compile(sub: Submission) -> str:
    from autograder.reference import build_reference_model

    model = build_reference_model()
    compiled = sub.call("compile_model", model)
    if compiled is None:
        raise CheckFailed("`compile_model` returned None: compile the model and `return model`")
    if not getattr(compiled, "compiled", False):
        raise CheckFailed("the model is not compiled: call model.compile(loss=..., optimizer=..., metrics=[...])")
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


def check_training(sub: Submission) -> str:
    run = sub.training()
    if run.error:
        raise CheckFailed(f"training failed: {run.error}")
    if not hasattr(run.history, "history") or not isinstance(run.history.history, dict):
        raise CheckFailed(
            f"`train_model` returned {type(run.history).__name__}: return the History object that model.fit returns"
        )
    if not run.fit_calls:
        raise CheckFailed("`train_model` never called model.fit on the model it was given")
    history = run.history_dict
    if not any(key.startswith("val_") for key in history):
        raise CheckFailed("there is no validation data: pass validation_data=(X_valid, y_valid) to model.fit")
    missing = [key for key in ("loss", "val_loss") if key not in history]
    if not ACCURACY_NAMES & set(history) or missing:
        raise CheckFailed(f"the history records {sorted(history)}; expected loss, accuracy, val_loss and val_accuracy")
    if run.epochs != EPOCHS:
        raise CheckFailed(
            f"the model trained for {run.epochs} epochs; the assignment asks for {EPOCHS}: "
            "pass epochs=epochs to model.fit"
        )
    call = run.fit_calls[-1]
    if call.get("validation_split"):
        raise CheckFailed(
            "validated on a slice of the training data (validation_split): pass validation_data=(X_valid, y_valid)"
        )
    validation = call.get("validation_data")
    if not (
        isinstance(validation, (tuple, list))
        and len(validation) >= 2
        and np.array_equal(np.asarray(validation[0]), sub.data.X_valid)
        and np.array_equal(np.asarray(validation[1]), sub.data.y_valid)
    ):
        raise CheckFailed("the model was not validated on the validation set: pass validation_data=(X_valid, y_valid)")
    return f"{run.epochs} epochs with loss, accuracy, val_loss, val_accuracy, validated on the validation set"


def check_test_accuracy(sub: Submission) -> str:
    run = sub.training()
    if run.error:
        raise CheckFailed(f"no model to measure: training failed ({run.error})")
    accuracy = run.test_accuracy
    if accuracy is None or accuracy < MIN_TEST_ACCURACY:
        raise CheckFailed(
            f"test accuracy {accuracy:.4f}, below the minimum {MIN_TEST_ACCURACY}: check the model, the loss, the "
            "optimizer and the number of epochs"
        )
    return f"test accuracy {accuracy:.4f} (minimum {MIN_TEST_ACCURACY}), measured by the grader"


def check_predict_labels(sub: Submission) -> str:
    from autograder.reference import trained_reference_model

    model = trained_reference_model(sub.data)
    images = sub.data.X_test[:500]
    predicted = as_array(sub.call("predict_labels", model, images), "`predict_labels`")
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


def run_check(check: Check, sub: Submission) -> CheckResult:
    try:
        # A warning from student code (or from Keras about it) is not a failure of the check.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            message = check.run(sub)
    except NotDone as failure:
        return CheckResult(check.id, 0, check.points, False, str(failure), not_done=True)
    except CheckFailed as failure:
        return CheckResult(check.id, 0, check.points, False, str(failure))
    except Exception as error:  # a check tripped over something the student built: still a result
        return CheckResult(check.id, 0, check.points, False, f"could not be checked: {type(error).__name__}: {error}")
    return CheckResult(check.id, check.points, check.points, True, message)


def skipped(check: Check, why: str) -> CheckResult:
    return CheckResult(check.id, 0, check.points, False, why, skipped=True)
