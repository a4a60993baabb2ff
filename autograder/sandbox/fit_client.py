"""``model.fit`` as a service of the kit: in the student's process, a call describes a training.

While a submission is graded, the ``fit`` of the model given to ``train_model`` is
``FitClient.fit``. A call sends
the kit's trainer (``autograder.trainer.service``) what it describes — the model as Keras saves it
(configuration, compile settings, weights), the ``fit`` arguments, and the data, named when it
is one of the arrays the kit gave ``train_model`` — and returns the trainer's answer: the
trained weights are set on the student's model and a ``History`` holds the trainer's history,
so the student's code goes on as usual. Nothing trains in this process, and nothing it does
after the call changes what the trainer recorded: the grade is judged from the trainer's
record, which this process never holds.

What the trainer cannot reproduce (the student's own callbacks, a generator or dataset, a model
Keras cannot save) raises ``TrainingNotReproducible`` with a message for the student.
"""

from __future__ import annotations

import contextlib
import inspect
import io
import os
import socket
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from autograder.errors import TrainingNotReproducible
from autograder.i18n import _, translated
from autograder.sandbox import frames

MAX_REPLY_BYTES = 256 * 1024**2  # the trained weights (the lesson's: about 1 MiB)
MAX_DATA_BYTES = 64 * 1024**2  # arrays that are not the kit's, sent along (the kit's go by name)
FIT_ARRAYS = ("x", "y", "sample_weight")
PLAIN_ARGUMENTS = (
    "batch_size", "epochs", "shuffle", "validation_split", "initial_epoch", "steps_per_epoch",
    "validation_steps", "validation_batch_size", "validation_freq",
)


# Keras's own callbacks that only watch a training (write a checkpoint, a log): the training is the one
# without them. Any other, a subclass of these too, may change it, and is refused.
WATCHING_CALLBACKS = ("CSVLogger", "History", "ModelCheckpoint", "ProgbarLogger", "TensorBoard")


class SocketTransport:
    """Frames to the grader over the sandbox's Unix socket."""

    def __init__(self, path: Path):
        self.path = path

    def exchange(self, header: dict, blobs: dict[str, bytes]) -> tuple[dict, dict[str, bytes]]:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as connection:
            connection.connect(str(self.path))
            connection.sendall(frames.encode(header, blobs))
            return frames.decode(frames.reader(connection.recv), MAX_REPLY_BYTES)


class LocalTransport:
    """Frames to a trainer in this process: for a student's own notebook on their own machine."""

    def __init__(self, trainer):
        self.trainer = trainer

    def exchange(self, header: dict, blobs: dict[str, bytes]) -> tuple[dict, dict[str, bytes]]:
        return self.trainer.handle(header, blobs)


def with_keras_activations(model: Any) -> Any:
    """``model`` with TensorFlow's own softmax and log-softmax (``activation=tf.nn.softmax``, as older
    tutorials write it) replaced by Keras's, which compute the same: Keras saves TensorFlow's under names
    it cannot load back (``softmax_v2``). TensorFlow's other activations it saves by Keras's names."""
    import keras

    for layer in model._flatten_layers(include_self=False, recursive=True):
        activation = getattr(layer, "activation", None)
        name = getattr(activation, "__name__", "")
        if str(getattr(activation, "__module__", "")).startswith("tensorflow") and name in ("softmax_v2",
                                                                                           "log_softmax_v2"):
            layer.activation = getattr(keras.activations, name.removesuffix("_v2"))
    return model


def saved_model(model: Any) -> bytes:
    """The model as Keras saves it (.keras: configuration, compile settings, weights), TensorFlow's
    softmax as Keras's (``with_keras_activations``)."""
    with_keras_activations(model)
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "model.keras")
        model.save(path)
        with open(path, "rb") as handle:
            return handle.read()


def npy(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    return buffer.getvalue()


class FitClient:
    """Sends each ``fit`` call to the trainer through ``transport``.

    ``known``: the arrays the kit gave ``train_model``, by name (``X_train``…). An argument equal to
    one of them is sent by name, anything else as its values."""

    def __init__(self, transport, known: dict[str, np.ndarray] | None = None):
        self.transport = transport
        self.known = dict(known or {})
        self.calls = 0
        self.histories: list = []  # what each call returned, to tell whether train_model returned one

    @contextlib.contextmanager
    def installed(self, model):
        """Within the block, ``model.fit`` goes to the trainer (the model given to ``train_model``:
        a fit on any other model trains nothing the grader records)."""
        signature = inspect.signature(type(model).fit)
        client = self

        def fit(*args, **kwargs):
            return client.fit(model, signature.bind(model, *args, **kwargs).arguments)

        model.fit = fit
        try:
            yield self
        finally:
            model.__dict__.pop("fit", None)

    def describe(self, value: Any, name: str, blobs: dict[str, bytes]) -> dict | None:
        """How the trainer finds an array argument: by the kit's name, or as values sent along."""
        if value is None:
            return None
        for known_name, known in self.known.items():
            if value is known:
                return {"ref": known_name}
        if hasattr(value, "__next__") or type(value).__name__.endswith(("Dataset", "Sequence", "PyDataset")):
            raise TrainingNotReproducible(_(
                "`{name}` is a {kind}; the grader trains on arrays: pass the NumPy arrays train_model was given"
            ).format(name=name, kind=type(value).__name__))
        try:
            array = np.asarray(value)
        except Exception:
            raise TrainingNotReproducible(
                _("`{name}` is a {kind}, not an array").format(name=name, kind=type(value).__name__)
            ) from None
        if array.dtype == object or array.dtype.kind not in "biuf":
            raise TrainingNotReproducible(
                _("`{name}` is not an array of numbers ({kind})").format(name=name, kind=type(value).__name__)
            )
        for known_name, known in self.known.items():
            if array.shape == known.shape and np.array_equal(array, known):
                return {"ref": known_name, "dtype": str(array.dtype)}
        blob = f"{name}.npy"
        blobs[blob] = npy(np.ascontiguousarray(array))
        return {"blob": blob}

    def fit(self, model: Any, arguments: dict[str, Any]):
        import keras

        arguments = dict(arguments)
        arguments.pop("self", None)
        callbacks = watching_callbacks(arguments.get("callbacks"))
        if getattr(model, "optimizer", None) is None or not getattr(model, "compiled", False):
            raise TrainingNotReproducible(_("the model is not compiled: call model.compile(...) before model.fit"))
        refuse_dicts_read_as_objects(model)
        blobs: dict[str, bytes] = {}
        described: dict[str, Any] = {name: self.describe(arguments.get(name), name, blobs) for name in FIT_ARRAYS}
        validation = arguments.get("validation_data")
        if validation is not None:
            if not isinstance(validation, (tuple, list)) or len(validation) not in (2, 3):
                raise TrainingNotReproducible(_("validation_data must be a tuple (X_valid, y_valid) of arrays"))
            described["validation_data"] = [
                self.describe(part, f"validation_{index}", blobs) for index, part in enumerate(validation)
            ]
        for name in PLAIN_ARGUMENTS:
            if name in arguments:
                described[name] = plain(arguments[name])
        if arguments.get("class_weight") is not None:
            described["class_weight"] = {str(k): plain(v) for k, v in dict(arguments["class_weight"]).items()}
        if sum(map(len, blobs.values())) > MAX_DATA_BYTES:
            raise TrainingNotReproducible(_(
                "model.fit was given data the grader does not have, too large to send ({mib} MiB): pass the "
                "arrays train_model was given"
            ).format(mib=f"{sum(map(len, blobs.values())) / 2**20:.0f}"))
        try:
            blobs["model.keras"] = saved_model(model)
        except Exception as error:
            raise TrainingNotReproducible(_(
                "the grader cannot take this model to train it (Keras cannot save it: {error})"
            ).format(error=f"{type(error).__name__}: {str(error)[:200]}")) from None
        header, reply = self.transport.exchange({"op": "fit", "call": self.calls, "arguments": described}, blobs)
        self.calls += 1
        if not header.get("ok"):
            raise TrainingNotReproducible(refused(header))
        with np.load(io.BytesIO(reply["weights.npz"]), allow_pickle=False) as saved:
            weights = [saved[f"w{index}"] for index in range(len(saved.files))]
        if not getattr(model, "built", True):
            # A model with no input shape, which plain Keras's fit builds on x, and the trainer's did. Built
            # only now: sent built, it would not be the network `build_model` gives, by which the training is
            # judged. Its batch dimension, no weight's, is left open, as Keras leaves it after a partial batch.
            model.build((None, *np.shape(arguments["x"])[1:]))
        model.set_weights(weights)
        histories = filled_histories(callbacks, model, header)
        self.histories.extend(histories)
        history = histories[-1]
        model.history = history  # as Keras's fit leaves it: `return model.history` returns this History
        for callback in callbacks:
            if type(callback) is keras.callbacks.ModelCheckpoint:
                checkpoint(callback, model, history)
        return history


def filled_histories(callbacks: list, model: Any, header: dict) -> list:
    """Each History fit was given, filled from the trainer's reply as Keras fills it (appending, as over
    several calls), or a new one: the last is the one fit returns."""
    import keras

    histories = [c for c in callbacks if type(c) is keras.callbacks.History] or [keras.callbacks.History()]
    for history in histories:
        history.set_model(model)
        kept = history.history if type(history.history) is dict else {}
        history.history = {str(k): list(v) for k, v in kept.items() if type(v) is list}
        for name, values in (header.get("history") or {}).items():
            history.history.setdefault(str(name), []).extend(values)
        history.epoch = list(header.get("epoch") or [])
        history.params = dict(header.get("params") or {})
    return histories


def watching_callbacks(given: Any) -> list:
    """The callbacks fit was given, all Keras's own that only watch (WATCHING_CALLBACKS), or refused."""
    import keras

    callbacks = list(given) if type(given) in (list, tuple) else [given] if given else []
    watching = {getattr(keras.callbacks, name) for name in WATCHING_CALLBACKS}

    def changing(callback: Any) -> bool:  # a subclass, or a function set on the instance, may change anything
        own = getattr(callback, "__dict__", None)  # Keras sets no function there before it runs the callback
        return type(callback) not in watching or type(own) is not dict or any(
            not isinstance(name, str) or callable(value) and not isinstance(value, keras.Model)
            for name, value in own.items())

    unreproducible = [type(callback).__name__ for callback in callbacks if changing(callback)]
    if unreproducible:
        names = ", ".join(unreproducible)
        raise TrainingNotReproducible(_(
            "the grader trains your model with its own code and cannot run your callbacks ({names}): "
            "remove callbacks= from model.fit"
        ).format(names=names))
    return callbacks


def checkpoint(callback: Any, model: Any, history: Any) -> None:
    """What a ModelCheckpoint would have left for the code after ``fit`` that loads it: the model as the
    training left it, which is the model graded (not the best epoch's, with ``save_best_only``)."""
    logs = {name: values[-1] for name, values in history.history.items() if values}
    try:
        path = str(callback.filepath).format(epoch=len(history.epoch), batch=None, **logs)
        os.makedirs(os.path.dirname(path) or ".", exist_ok=True)  # as Keras's checkpoint makes its folder
        if callback.save_weights_only:
            model.save_weights(path)
        else:
            model.save(path)
    except Exception:  # a path Keras would not write either: code that loads it fails as it would there
        pass


def refuse_dicts_read_as_objects(model: Any) -> None:
    """Keras reads a dict given to compile as one entry per output, named by its keys, and fails on
    {"class_name": ...}; the saved model the trainer loads holds the same dict, which loading reads as
    the object it describes. Refused, as Keras refuses it, rather than trained."""
    given = getattr(getattr(model, "_compile_config", None), "config", None)
    for setting in ("loss", "loss_weights", "metrics", "weighted_metrics"):
        value = given.get(setting) if isinstance(given, dict) else None
        if isinstance(value, dict) and "class_name" in value:
            raise TrainingNotReproducible(_(
                "`{setting}` is a dict, which Keras reads as one entry per output of the model, named by its keys "
                "({keys}), and these are not your model's outputs: pass the {setting} itself, for example {example}"
            ).format(setting=setting, keys=", ".join(repr(str(key))[:40] for key in list(value)[:6]),
                     example="keras.losses.SparseCategoricalCrossentropy()" if "loss" in setting else '["accuracy"]'))


def refused(header: dict) -> str:
    """Why the trainer refused a call (a catalogue message and its fields), in the language in effect."""
    message, fields = header.get("message"), header.get("fields")
    if not isinstance(message, str) or not message:
        return _("the grader's trainer refused this training")
    if not isinstance(fields, dict) or not all(isinstance(value, str) for value in fields.values()):
        fields = {}
    return translated(message, fields)


def plain(value: Any) -> Any:
    """A JSON value for a plain fit argument (numbers of NumPy's become Python's)."""
    if isinstance(value, (np.generic,)):
        return value.item()
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return repr(value)[:200]
