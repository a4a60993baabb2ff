"""The kit's trainer: it trains what a submission's code describes, with the kit's code only.

A submission's ``train_model`` calls ``model.fit``; in the student's process that call is only a
description (``autograder.sandbox.fit_client``): the model's configuration and compile settings, the
``fit`` arguments and the data. The trainer — a process of its own while grading
(``python -m autograder.trainer.service``), with no student code loaded — trains it:

- the model is rebuilt from its configuration, which is validated first (Keras classes of an
  allow-list only, bounded size: ``autograder.sandbox.model_archive``), and its first weights are the ones
  Keras gives that configuration under the kit's seed, whatever the student's process claims;
- a second ``fit`` call continues the trainer's own model when the student's model still holds
  the weights the trainer handed back; weights changed in between cannot be reproduced and are
  refused with a message, as are the student's callbacks (but Keras's own that only watch it,
  which the child leaves out) and data the trainer cannot read;
- each epoch runs on the kit's fast path (``autograder.trainer.fast_path``), seeded, on the kit's own
  copies of the arrays named by the call;
- finally it predicts the test images with the model it trained, for the judge.

What it did is a ``TrainingRecord`` (``autograder.trainer.records``): the facts the ``training`` and
``test_accuracy`` checks judge. A training is cached by everything it depends on
(``autograder.trainer.cache``), so an identical description from another submission is replayed
from what the trainer itself computed: no submission can plant a result for another.
"""

from __future__ import annotations

import gc
import io
import json
import os
import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from autograder.assignment import MAX_EPOCHS, N_VALID, SEED
from autograder.errors import ArtifactError, Refused
from autograder.i18n import N_
from autograder.sandbox import frames
from autograder.trainer.cache import TrainingCache, array_digest, restore_optimizer, restore_variables, training_key
from autograder.trainer.records import FitRecord, TrainingRecord, compile_signature, model_signature, refusal

# One request in the grader's memory: the model (model_archive.MAX_MODEL_BYTES) and other data (fit_client's).
MAX_REQUEST_BYTES = 128 * 1024**2
KIT_ARRAYS = ("X_train", "y_train", "X_valid", "y_valid")
VALIDATION = ("X_valid", "y_valid")


def model_config(model_bytes: bytes) -> dict:
    """The configuration of a ``.keras`` archive, bounded and allow-listed by ``autograder.sandbox.model_archive``
    before anything builds it, its names ones TensorFlow can train (before a stored training stands for it)."""
    from autograder.sandbox.bounded_files import load_json
    from autograder.sandbox.model_archive import read_model_archive
    from autograder.sandbox.model_config import validate_model_config
    from autograder.trainer.records import refuse_names_tensorflow_refuses

    try:
        members = read_model_archive(model_bytes)
        config = load_json(members.get("config.json", b"null"), "the model's config.json")
        validate_model_config(config)
    except ArtifactError as error:
        raise Refused(N_("the grader cannot train this model: {error}"), error=error) from None
    refuse_names_tensorflow_refuses(config, config.get("compile_config"))
    return config


# --- the trainer -------------------------------------------------------------------------------------


class Trainer:
    """Trains the fit calls of one submission at a time, from their descriptions.

    ``cache``: a folder of trainings shared by the trainers of one batch (``None``: no reuse).
    ``progress``: extra Keras callbacks (the demo's progress lines)."""

    def __init__(self, arrays: dict[str, np.ndarray], test_images=None, *, cache: Path | None = None,
                 seed: int = SEED, fast: bool = True, progress=()):
        self.arrays = {name: arrays[name] for name in KIT_ARRAYS}  # X_train, y_train, X_valid, y_valid
        self.test_images = test_images  # normalized, for the final model's predictions
        self.digests = {name: array_digest(array) for name, array in self.arrays.items()}
        self.cache = TrainingCache(cache)
        self.seed, self.fast = seed, fast
        self.progress = list(progress)
        self.forget()

    def forget(self) -> None:
        """Nothing of the submission served so far, only the data: a warm trainer serves the next one
        as a new trainer would (its first call rebuilds the model under the kit's seed, after
        ``keras.backend.clear_session``)."""
        self.record = TrainingRecord()
        self.end_chain()

    def end_chain(self) -> None:
        """No training to continue: the next call starts from the kit's seed. After a call that failed,
        too, which may have changed the model (trained on other data, then tripped in the validation
        pass) or replaced it (then refused): continued, that model would be trained and stored under the
        key of an honest continuation, which a classmate's identical calls replay."""
        self.model = None
        self.architecture = self.compile = None
        self.position = 0  # calls in the current chain
        self.key: str | None = None  # of the current chain's last call
        self.weights: list[np.ndarray] | None = None  # what the trainer last handed back

    @classmethod
    def from_images(cls, train_images, train_labels, test_images=None, **options) -> "Trainer":
        """The kit's split of the raw images, normalized as the kit does (``autograder.data.reference``)."""
        from autograder.data.reference import scaled

        X, y = scaled(np.asarray(train_images)), np.asarray(train_labels)
        arrays = {"X_train": X[N_VALID:], "y_train": y[N_VALID:], "X_valid": X[:N_VALID], "y_valid": y[:N_VALID]}
        return cls(arrays, None if test_images is None else scaled(np.asarray(test_images)), **options)

    # The protocol: one frame in, one frame out (autograder.sandbox.frames).
    def handle(self, header: dict, blobs: dict[str, bytes]) -> tuple[dict, dict[str, bytes]]:
        if header.get("op") != "fit":
            return refusal(N_("the grader's trainer only trains fit calls"), {}), {}
        started = time.monotonic()
        try:
            record, weights = self.fit(header.get("arguments"), blobs)
        except Refused as refused:
            record, weights = FitRecord(trained=False, message=refused.template, fields=refused.fields), None
        except Exception as error:  # what the description holds tripped Keras: still this call's result
            record = FitRecord(trained=False, message=N_("the grader could not train this model: {error}"),
                               fields={"error": f"{type(error).__name__}: {str(error)[:300]}"})
            weights = None
        record.seconds = round(time.monotonic() - started, 2)
        self.record.calls.append(record)
        if weights is None:  # the message in the catalogue's words: the student's side says it in theirs
            self.end_chain()
            return {**refusal(record.message, record.fields), "record": asdict(record)}, {}
        history = getattr(self.model, "history", None)
        reply = {
            "ok": True,
            "record": asdict(record),
            "history": record.history,
            "epoch": list(range(len(next(iter(record.history.values()), [])))),
            "params": dict(getattr(history, "params", None) or {}),
        }
        return reply, {"weights.npz": frames.npz(weights, "w")}

    def data(self, description: Any, name: str, blobs: dict[str, bytes]) -> tuple[np.ndarray | None, str | None, str]:
        """The array an argument names: (array, the kit's name for it or None, its digest)."""
        if description is None:
            return None, None, "none"
        if not isinstance(description, dict):
            raise Refused(N_("`{name}` could not be read"), name=name)
        if "ref" in description:
            ref = description["ref"]
            if ref not in self.arrays:
                raise Refused(N_("`{name}` names no array the grader knows"), name=name)
            return self.arrays[ref], ref, self.digests[ref]
        blob = blobs.get(str(description.get("blob")))
        if blob is None:
            raise Refused(N_("`{name}` was not sent"), name=name)
        try:
            array = np.load(io.BytesIO(blob), allow_pickle=False)
        except Exception:
            raise Refused(N_("`{name}` is not an array the grader can read"), name=name) from None
        if array.dtype.kind not in "biuf":
            raise Refused(N_("`{name}` is not an array of numbers"), name=name)
        digest = array_digest(array)
        for known, known_digest in self.digests.items():
            if digest == known_digest:
                return self.arrays[known], known, digest
        return array, None, digest

    def fit(self, arguments: Any, blobs: dict[str, bytes]) -> tuple[FitRecord, list[np.ndarray]]:
        if not isinstance(arguments, dict):
            raise Refused(N_("the fit call could not be read"))
        model_bytes = blobs.get("model.keras")
        if model_bytes is None:
            raise Refused(N_("the model was not sent"))
        config = model_config(model_bytes)
        rebuilt = as_keras_writes_it(config)
        architecture = model_signature(rebuilt)
        compiled = compile_signature(config.get("compile_config"))
        if not config.get("compile_config"):
            raise Refused(N_("the model is not compiled: call model.compile(...) before model.fit"))
        fit_arguments, described = self.fit_arguments(arguments, blobs)
        continues = (
            self.model is not None and architecture == self.architecture and compiled == self.compile
        )
        if continues:
            claimed = saved_weights(model_bytes)
            if len(claimed) != len(self.weights) or not all(
                a.shape == b.shape and np.array_equal(a, b) for a, b in zip(claimed, self.weights)
            ):
                raise Refused(N_(
                    "the model's weights were changed between two fit calls; the grader trains with its own "
                    "code and can only continue a training it ran itself: do not set or load weights in train_model"
                ))
        position, previous = (self.position, self.key) if continues else (0, None)
        key = training_key(architecture, compiled, described, previous, self.seed, self.fast, network=rebuilt)
        record = FitRecord(
            trained=True, continues=continues, key=key, architecture=architecture, compile=compiled,
            x=described["x"]["kit"], y=described["y"]["kit"], batch_size=fit_arguments.get("batch_size"),
            weighted=described["sample_weight"]["digest"] != "none" or "class_weight" in fit_arguments,
            steps_per_epoch=fit_arguments.get("steps_per_epoch"),
            validation=[part["kit"] for part in described["validation_data"]] if described["validation_data"] else None,
            validation_split=float(fit_arguments.get("validation_split") or 0.0),
            validation_steps=fit_arguments.get("validation_steps"),
            validation_freq=fit_arguments.get("validation_freq", 1),
        )
        if not continues:
            self.start_chain({**rebuilt, "compile_config": config.get("compile_config")})
            self.architecture, self.compile = architecture, compiled
        model = self.model
        with self.cache.locked(key):  # a second trainer with this key waits, then replays the first's result
            cached = self.cache.cached(key)
            if cached is not None:
                if not model.built:  # no input shape: Keras's fit builds it on x, as it did for the training stored
                    model.build((None, *np.shape(fit_arguments["x"])[1:]))
                variables, optimizer_variables, history = cached
                restore_variables(model, variables)
                restore_optimizer(model, optimizer_variables)
                # Run once by TensorFlow, as training afresh would: a name its graphs refuse fails this call, too.
                model.predict(fit_arguments["x"][:32], verbose=0)
                record.reused = True
            else:
                history = self.train(model, fit_arguments, position)
                record.stored = self.cache.store(key, model, history)
        record.history = {str(k): [float(v) for v in values] for k, values in history.items()}
        record.epochs_run = max((len(v) for v in record.history.values()), default=0)
        self.position, self.key = position + 1, key
        self.weights = [np.array(w, copy=True) for w in model.get_weights()]
        return record, self.weights

    def start_chain(self, config: dict) -> None:
        """A new model from ``config`` (the network as Keras wrote it back: what the key describes is
        what trains, its layers built in that order, each drawing its initial weights, none off the
        way), its first weights Keras's under the kit's seed."""
        import keras

        keras.backend.clear_session()
        keras.utils.set_random_seed(self.seed)
        self.model = keras.saving.deserialize_keras_object(config, safe_mode=True)
        if not getattr(self.model, "compiled", False) or self.model.optimizer is None:
            raise Refused(N_("the model is not compiled: call model.compile(...) before model.fit"))

    def fit_arguments(self, arguments: dict, blobs: dict[str, bytes]) -> tuple[dict, dict]:
        """Keras's fit arguments for the kit's arrays, and their description for the key."""
        fit: dict[str, Any] = {}
        described: dict[str, Any] = {}
        for name in ("x", "y", "sample_weight"):
            array, kit, digest = self.data(arguments.get(name), name, blobs)
            if array is not None:
                fit[name] = array
            described[name] = {"kit": kit, "digest": digest}
        if fit.get("x") is None:
            raise Refused(N_("model.fit was given no training data: pass model.fit(X_train, y_train, ...)"))
        validation = arguments.get("validation_data")
        described["validation_data"] = None
        if validation is not None:
            if not isinstance(validation, list) or len(validation) not in (2, 3):
                raise Refused(N_("validation_data must be (X_valid, y_valid)"))
            parts = [self.data(part, f"validation_data[{i}]", blobs) for i, part in enumerate(validation)]
            fit["validation_data"] = tuple(part[0] for part in parts)
            described["validation_data"] = [{"kit": kit, "digest": digest} for _, kit, digest in parts]
        integers = {
            "epochs": (1, 0, MAX_EPOCHS), "initial_epoch": (0, 0, MAX_EPOCHS), "batch_size": (None, 1, 10**6),
            "steps_per_epoch": (None, 1, 10**6), "validation_steps": (None, 1, 10**6),
            "validation_batch_size": (None, 1, 10**6), "validation_freq": (1, 1, MAX_EPOCHS),
        }
        for name, (default, low, high) in integers.items():
            value = arguments.get(name, default)
            if value is None and default is None:
                continue
            if type(value) is not int or not low <= value <= high:
                raise Refused(N_("{argument} is not a whole number from {low} to {high}"), argument=f"{name}={value!r}",
                              low=low, high=high)
            fit[name] = value
        shuffle = arguments.get("shuffle", True)
        if type(shuffle) is not bool:
            raise Refused(N_("{argument}: the grader takes True or False"), argument=f"shuffle={shuffle!r}")
        fit["shuffle"] = shuffle
        split = arguments.get("validation_split", 0.0) or 0.0
        if type(split) not in (int, float) or not 0 <= split < 1:
            raise Refused(N_("{argument} is not a fraction from 0 to 1"), argument=f"validation_split={split!r}")
        if split:
            fit["validation_split"] = float(split)
        weights = arguments.get("class_weight")
        if weights is not None:
            if not isinstance(weights, dict) or len(weights) > 1000 or not all(
                str(k).isdigit() and type(v) in (int, float) for k, v in weights.items()
            ):
                raise Refused(N_("class_weight must map class numbers to weights"))
            fit["class_weight"] = {int(k): float(v) for k, v in weights.items()}
        described.update(
            {name: fit[name] for name in fit if name not in ("x", "y", "sample_weight", "validation_data")}
        )
        return fit, described

    def train(self, model, arguments: dict, position: int) -> dict:
        import keras

        from autograder.trainer.fast_path import use_fast_execution

        model.__dict__.pop("fit", None)  # the previous call's wrapper
        if self.fast:
            use_fast_execution(model, self.seed if position == 0 else [self.seed, position])
        keras.utils.set_random_seed(self.seed)
        history = model.fit(**arguments, verbose=0, callbacks=list(self.progress))
        return history.history

    def test_outputs(self) -> np.ndarray | None:
        """The final model's outputs for the test images (None: nothing trained), without the XLA the fast
        path trains with and a replay lacks: a near tie at the pass mark goes one way both times."""
        if self.model is None or self.test_images is None or not self.record.calls or not self.record.calls[-1].trained:
            return None
        self.model.jit_compile, self.model.predict_function = False, None
        return np.asarray(self.model.predict(self.test_images, batch_size=1000, verbose=0))

    def predictions(self) -> np.ndarray | None:  # the class the final model gives each test image
        output = self.test_outputs()
        if output is None or output.ndim != 2 or output.shape[0] != len(self.test_images):
            return None
        return np.argmax(output, axis=-1).astype(np.int64)

    def finish(self) -> TrainingRecord:
        self.record.predictions = self.predictions()
        return self.record

    def next_submission(self) -> None:
        """A warm trainer's turn to the next submission: it forgets this one, and Keras drops its
        model and graphs."""
        import keras

        self.forget()
        self.cache.next_submission()
        keras.backend.clear_session()
        gc.collect()


def as_keras_writes_it(config: dict) -> dict:
    """The network Keras builds from ``config`` (its compile settings aside), written back by Keras:
    Keras wires a Functional model by each layer's outer name, leaves out layers off the way from its
    inputs to its outputs and ignores fields it never writes (``autocast``), so one text can be read
    as another network, and two texts be one. Its signature is a training's key, and it is what trains."""
    import keras

    plain = json.loads(json.dumps({k: v for k, v in config.items() if k != "compile_config"}))
    rebuilt = keras.saving.serialize_keras_object(keras.saving.deserialize_keras_object(plain, safe_mode=True))
    rebuilt.pop("compile_config", None)
    return json.loads(json.dumps(rebuilt, default=list))


def saved_weights(model_bytes: bytes) -> list[np.ndarray]:
    """The weights stored in a .keras archive, in the order of ``model.get_weights()``."""
    from autograder.sandbox.model_archive import load_model_bytes

    return load_model_bytes(model_bytes).get_weights()


# --- the trainer as a process of its own ------------------------------------------------------------


def main(inputs: Path, cache: str, reply_fd: int) -> int:
    """``python -m autograder.trainer.service INPUTS CACHE REPLY_FD``: frames in on stdin, out on REPLY_FD.

    It serves one submission after another (``autograder.trainer.desk.WarmTrainers``): ``finish`` ends a
    submission, answered with its final model's predictions, and the trainer forgets it."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    from autograder import import_for_good, skip_slow_optional_imports

    skip_slow_optional_imports()
    import_for_good("tensorflow", "keras")  # before the first request: the grader starts this while the child starts
    images = np.load(inputs / "train_images.npy", mmap_mode="r")
    labels = np.load(inputs / "train_labels.npy", mmap_mode="r")
    test = np.load(inputs / "test_images.npy", mmap_mode="r")
    trainer = Trainer.from_images(images, labels, test, cache=Path(cache) if cache != "-" else None)

    read = frames.reader(sys.stdin.buffer.read1 if hasattr(sys.stdin.buffer, "read1") else sys.stdin.buffer.read)
    with os.fdopen(reply_fd, "wb", buffering=0) as out:
        while True:
            try:
                header, blobs = frames.decode(read, MAX_REQUEST_BYTES)
            except frames.FrameError:
                return 0  # the grader closed its end
            if header.get("op") == "finish":
                record = trainer.finish()
                predictions = {} if record.predictions is None else {"predictions.npy": npy_bytes(record.predictions)}
                out.write(frames.encode({"ok": True}, predictions))
                trainer.next_submission()
                continue
            reply, reply_blobs = trainer.handle(header, blobs)
            out.write(frames.encode(reply, reply_blobs))


def npy_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    return buffer.getvalue()


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1]), sys.argv[2], int(sys.argv[3])))
