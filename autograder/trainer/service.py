"""The kit's trainer: it trains what a submission's code describes, with the kit's code only.

A submission's ``train_model`` calls ``model.fit``; in the student's process that call is only a
description (``autograder.sandbox.fit_client``): the model's configuration and compile settings, the
``fit`` arguments and the data. The trainer — a process of its own while grading
(``python -m autograder.trainer.service``), with no student code loaded — trains it:

- the model is rebuilt from its configuration, which is validated first (Keras classes of an
  allow-list only, bounded size: ``autograder.sandbox.artifacts``), and its first weights are the ones
  Keras gives that configuration under the kit's seed, whatever the student's process claims;
- a second ``fit`` call continues the trainer's own model when the student's model still holds
  the weights the trainer handed back; weights changed in between cannot be reproduced and are
  refused with a message, as are the student's callbacks and data the trainer cannot read;
- each epoch runs on the kit's fast path (``autograder.trainer.fast_path``), seeded, on the kit's own
  copies of the arrays named by the call;
- finally it predicts the test images with the model it trained, for the judge.

What it did is a ``TrainingRecord``: the facts the ``training`` and ``test_accuracy`` checks judge.
A training is cached by everything it depends on (``training_key``), so an identical description
from another submission is replayed from what the trainer itself computed: no submission can
plant a result for another.
"""

from __future__ import annotations

import fcntl
import hashlib
import io
import json
import os
import shutil
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from autograder.sandbox import frames
from autograder.assignment import N_VALID, SEED

# The model (at most artifacts.MAX_MODEL_BYTES, the lesson's 3 MiB) and arrays that are not the
# kit's (fit_client.MAX_DATA_BYTES): what the desk holds in the grader's memory for one request.
MAX_REQUEST_BYTES = 128 * 1024**2
MAX_EPOCHS = 1000
KIT_ARRAYS = ("X_train", "y_train", "X_valid", "y_valid")
VALIDATION = ("X_valid", "y_valid")


@dataclass
class FitRecord:
    """One ``fit`` call as the trainer saw and ran it."""

    trained: bool
    message: str | None = None  # why it could not be trained, for the student
    continues: bool = False  # continues the training of the call before it
    reused: bool = False  # replayed from the cache of identical trainings
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
    architecture: Any = None  # model_signature of its configuration
    compile: Any = None  # its compile settings, names aside
    seconds: float = 0.0

    @classmethod
    def from_json(cls, data: dict) -> "FitRecord":
        return cls(**{name: data[name] for name in cls.__dataclass_fields__ if name in data})


@dataclass
class TrainingRecord:
    """Everything the trainer did for one submission: facts, never claims of the student's process."""

    calls: list[FitRecord] = field(default_factory=list)
    predictions: np.ndarray | None = None  # the final model's class for each test image
    error: str | None = None  # the trainer itself could not go on (time limit, crash)

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


class Refused(Exception):
    """This fit call cannot be reproduced; the message is for the student."""


# --- what a model is, names aside ------------------------------------------------------------------


def model_signature(config: Any) -> Any:
    """A model's configuration without what only names objects in one process: the names of its
    layers and of the model (``dense_3``), where they are defined and where a Functional model
    refers to them, and ``shared_object_id``. Every other field is kept, a dtype policy's name
    (``float32``, ``int32``) and an activation's among them: two models with equal signatures
    compute the same function."""
    config = json.loads(json.dumps(config, default=list))  # a copy, tuples as lists
    names: dict[str, str] = {}

    def define(model: Any) -> None:
        inner = model.get("config") if isinstance(model, dict) else None
        if not isinstance(inner, dict):
            return
        inner.pop("name", None)
        for layer in inner.get("layers") or []:
            if isinstance(layer, dict) and isinstance(layer.get("config"), dict):
                name = layer["config"].get("name")
                if isinstance(name, str):
                    names.setdefault(name, f"<layer {len(names)}>")
                layer.pop("name", None)  # a Functional model's layers name themselves twice
                define(layer)

    def reference(item: Any) -> Any:
        return names.get(item, "<unknown layer>") if isinstance(item, str) else item

    def walk(item: Any) -> Any:
        if isinstance(item, list):
            return [walk(value) for value in item]
        if not isinstance(item, dict):
            return item
        result = {}
        for key, value in item.items():
            if key == "shared_object_id":
                continue
            if key == "keras_history" and isinstance(value, list) and value:
                value = [reference(value[0]), *value[1:]]
            elif key in ("input_layers", "output_layers") and isinstance(value, list):
                value = [[reference(v[0]), *v[1:]] if isinstance(v, list) and v else reference(v) for v in value]
            result[key] = walk(value)
        return result

    define(config)
    return walk(config)


def compile_signature(compile_config: Any) -> Any:
    """Compile settings without the optimizer's name, which Keras numbers per process (sgd, sgd_1)."""
    signature = model_signature({"config": compile_config})["config"]
    optimizer = signature.get("optimizer") if isinstance(signature, dict) else None
    if isinstance(optimizer, dict) and isinstance(optimizer.get("config"), dict):
        optimizer["config"].pop("name", None)
    return signature


def model_config(model_bytes: bytes) -> dict:
    """The configuration of a ``.keras`` archive, bounded and allow-listed by ``autograder.sandbox.artifacts``
    before anything builds it."""
    from autograder.sandbox.artifacts import ArtifactError, load_json, read_model_archive, validate_model_config

    try:
        members = read_model_archive(model_bytes)
        config = load_json(members.get("config.json", b"null"), "the model's config.json")
        validate_model_config(config)
    except ArtifactError as error:
        raise Refused(f"the grader cannot train this model: {error}") from None
    return config


# --- the trainer -------------------------------------------------------------------------------------


def array_digest(array: np.ndarray) -> str:
    array = np.ascontiguousarray(array)
    digest = hashlib.sha256(f"{array.dtype}{array.shape}".encode())
    digest.update(array.data)
    return digest.hexdigest()


class Trainer:
    """Trains the fit calls of one submission at a time, from their descriptions.

    ``cache``: a folder of trainings shared by the trainers of one batch (``None``: no reuse).
    ``progress``: extra Keras callbacks (the demo's progress lines)."""

    def __init__(self, arrays: dict[str, np.ndarray], test_images=None, *, cache: Path | None = None,
                 seed: int = SEED, fast: bool = True, progress=()):
        self.arrays = {name: arrays[name] for name in KIT_ARRAYS}  # X_train, y_train, X_valid, y_valid
        self.test_images = test_images  # normalized, for the final model's predictions
        self.digests = {name: array_digest(array) for name, array in self.arrays.items()}
        self.cache = cache
        self.seed, self.fast = seed, fast
        self.progress = list(progress)
        self.record = TrainingRecord()
        self.model = None
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
            return {"ok": False, "message": "the grader's trainer only trains fit calls"}, {}
        started = time.monotonic()
        try:
            record, weights = self.fit(header.get("arguments"), blobs)
        except Refused as refusal:
            record, weights = FitRecord(trained=False, message=str(refusal)), None
        except Exception as error:  # what the description holds tripped Keras: still this call's result
            message = f"the grader could not train this model: {type(error).__name__}: {str(error)[:300]}"
            record, weights = FitRecord(trained=False, message=message), None
        record.seconds = round(time.monotonic() - started, 2)
        self.record.calls.append(record)
        if weights is None:
            return {"ok": False, "message": record.message, "record": asdict(record)}, {}
        buffer = io.BytesIO()
        np.savez(buffer, **{f"w{index}": w for index, w in enumerate(weights)})
        history = getattr(self.model, "history", None)
        reply = {
            "ok": True,
            "record": asdict(record),
            "history": record.history,
            "epoch": list(range(len(next(iter(record.history.values()), [])))),
            "params": dict(getattr(history, "params", None) or {}),
        }
        return reply, {"weights.npz": buffer.getvalue()}

    def data(self, description: Any, name: str, blobs: dict[str, bytes]) -> tuple[np.ndarray | None, str | None, str]:
        """The array an argument names: (array, the kit's name for it or None, its digest)."""
        if description is None:
            return None, None, "none"
        if not isinstance(description, dict):
            raise Refused(f"`{name}` could not be read")
        if "ref" in description:
            ref = description["ref"]
            if ref not in self.arrays:
                raise Refused(f"`{name}` names no array the grader knows")
            return self.arrays[ref], ref, self.digests[ref]
        blob = blobs.get(str(description.get("blob")))
        if blob is None:
            raise Refused(f"`{name}` was not sent")
        try:
            array = np.load(io.BytesIO(blob), allow_pickle=False)
        except Exception:
            raise Refused(f"`{name}` is not an array the grader can read") from None
        if array.dtype.kind not in "biuf":
            raise Refused(f"`{name}` is not an array of numbers")
        digest = array_digest(array)
        for known, known_digest in self.digests.items():
            if digest == known_digest:
                return self.arrays[known], known, digest
        return array, None, digest

    def fit(self, arguments: Any, blobs: dict[str, bytes]) -> tuple[FitRecord, list[np.ndarray]]:
        import keras

        if not isinstance(arguments, dict):
            raise Refused("the fit call could not be read")
        model_bytes = blobs.get("model.keras")
        if model_bytes is None:
            raise Refused("the model was not sent")
        config = model_config(model_bytes)
        architecture = model_signature({k: v for k, v in config.items() if k != "compile_config"})
        compiled = compile_signature(config.get("compile_config"))
        if not config.get("compile_config"):
            raise Refused("the model is not compiled: call model.compile(...) before model.fit")
        fit_arguments, described = self.fit_arguments(arguments, blobs)
        continues = (
            self.model is not None and architecture == self.architecture and compiled == self.compile
        )
        if continues:
            claimed = saved_weights(model_bytes)
            if len(claimed) != len(self.weights) or not all(
                a.shape == b.shape and np.array_equal(a, b) for a, b in zip(claimed, self.weights)
            ):
                raise Refused(
                    "the model's weights were changed between two fit calls; the grader trains with its own "
                    "code and can only continue a training it ran itself: do not set or load weights in train_model"
                )
        position = self.position if continues else 0
        key = training_key(architecture, compiled, described, self.key if continues else None, self.seed, self.fast)
        record = FitRecord(
            trained=True, continues=continues, key=key, architecture=architecture, compile=compiled,
            x=described["x"]["kit"], y=described["y"]["kit"], batch_size=fit_arguments.get("batch_size"),
            weighted=described["sample_weight"]["digest"] != "none" or "class_weight" in fit_arguments,
            steps_per_epoch=fit_arguments.get("steps_per_epoch"),
            validation=[part["kit"] for part in described["validation_data"]] if described["validation_data"] else None,
            validation_split=float(fit_arguments.get("validation_split") or 0.0),
        )
        if not continues:
            # The first weights are Keras's for this configuration under the kit's seed.
            keras.backend.clear_session()
            keras.utils.set_random_seed(self.seed)
            self.model = keras.saving.deserialize_keras_object(config, safe_mode=True)
            if not getattr(self.model, "compiled", False) or self.model.optimizer is None:
                raise Refused("the model is not compiled: call model.compile(...) before model.fit")
            self.architecture, self.compile = architecture, compiled
        model = self.model
        with self.locked(key):  # a second trainer with this key waits, then replays the first's result
            cached = self.cached(key)
            if cached is not None:
                weights, optimizer_variables, history = cached
                model.set_weights(weights)
                restore_optimizer(model, optimizer_variables)
                record.reused = True
            else:
                history = self.train(model, fit_arguments, position)
                self.store(key, model, history)
        record.history = {str(k): [float(v) for v in values] for k, values in history.items()}
        record.epochs_run = max((len(v) for v in record.history.values()), default=0)
        self.position, self.key = position + 1, key
        self.weights = [np.array(w, copy=True) for w in model.get_weights()]
        return record, self.weights

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
            raise Refused("model.fit was given no training data: pass model.fit(X_train, y_train, ...)")
        validation = arguments.get("validation_data")
        described["validation_data"] = None
        if validation is not None:
            if not isinstance(validation, list) or len(validation) not in (2, 3):
                raise Refused("validation_data must be (X_valid, y_valid)")
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
                raise Refused(f"{name}={value!r} is not a whole number from {low} to {high}")
            fit[name] = value
        shuffle = arguments.get("shuffle", True)
        if type(shuffle) is not bool:
            raise Refused(f"shuffle={shuffle!r}: the grader takes True or False")
        fit["shuffle"] = shuffle
        split = arguments.get("validation_split", 0.0) or 0.0
        if type(split) not in (int, float) or not 0 <= split < 1:
            raise Refused(f"validation_split={split!r} is not a fraction from 0 to 1")
        if split:
            fit["validation_split"] = float(split)
        weights = arguments.get("class_weight")
        if weights is not None:
            if not isinstance(weights, dict) or len(weights) > 1000 or not all(
                str(k).isdigit() and type(v) in (int, float) for k, v in weights.items()
            ):
                raise Refused("class_weight must map class numbers to weights")
            fit["class_weight"] = {int(k): float(v) for k, v in weights.items()}
        described.update({name: fit[name] for name in fit if name not in ("x", "y", "sample_weight", "validation_data")})
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

    def predictions(self) -> np.ndarray | None:
        """The class the final model gives each test image, or None when nothing was trained."""
        if self.model is None or self.test_images is None or not self.record.calls or not self.record.calls[-1].trained:
            return None
        output = np.asarray(self.model.predict(self.test_images, batch_size=1000, verbose=0))
        if output.ndim != 2 or output.shape[0] != len(self.test_images):
            return None
        return np.argmax(output, axis=-1).astype(np.int64)

    def finish(self) -> TrainingRecord:
        self.record.predictions = self.predictions()
        return self.record

    # --- the cache of trainings -----------------------------------------------------------------------

    def cached(self, key: str):
        """The trainings folder's result for ``key``, written by a trainer (never by a child)."""
        if self.cache is None or not (self.cache / key).is_dir():
            return None
        folder = self.cache / key
        try:
            with np.load(folder / "weights.npz", allow_pickle=False) as saved:
                weights = [saved[f"w{i}"] for i in range(len(saved.files))]
            with np.load(folder / "optimizer.npz", allow_pickle=False) as saved:
                optimizer = [saved[f"v{i}"] for i in range(len(saved.files))]
            history = json.loads((folder / "history.json").read_text())
        except (OSError, ValueError, KeyError):
            return None
        return weights, optimizer, history

    def store(self, key: str, model, history: dict) -> None:
        if self.cache is None or (self.cache / key).exists():
            return
        temporary = self.cache / f".{key}.{os.getpid()}"
        shutil.rmtree(temporary, ignore_errors=True)
        temporary.mkdir(parents=True)
        np.savez(temporary / "weights.npz", **{f"w{i}": w for i, w in enumerate(model.get_weights())})
        variables = [np.asarray(v) for v in getattr(model.optimizer, "variables", [])]
        np.savez(temporary / "optimizer.npz", **{f"v{i}": v for i, v in enumerate(variables)})
        (temporary / "history.json").write_text(json.dumps({k: [float(x) for x in v] for k, v in history.items()}))
        os.replace(temporary, self.cache / key)

    def locked(self, key: str):
        """While held, no other trainer of the batch trains or stores ``key``."""
        import contextlib

        @contextlib.contextmanager
        def lock():
            if self.cache is None:
                yield
                return
            self.cache.mkdir(parents=True, exist_ok=True)
            # Read-only is enough for a lock, and the file may be another trainer's (another user's).
            handle = os.open(self.cache / f".{key}.lock", os.O_RDONLY | os.O_CREAT, 0o644)
            try:
                fcntl.flock(handle, fcntl.LOCK_EX)
                yield
            finally:
                os.close(handle)

        return lock()


def training_key(architecture: Any, compiled: Any, described: dict, previous: str | None, seed: int, fast: bool) -> str:
    """Everything a training's result depends on: the model's signature, its compile settings, every
    fit argument (arrays by content), the training it continues, the seed, the number of threads,
    the execution path and the libraries' versions."""
    import keras
    import tensorflow as tf

    payload = {
        "versions": [keras.__version__, tf.__version__, np.__version__],
        "threads": [os.environ.get(name) for name in ("TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS")],
        "seed": seed,
        "fast": fast,
        "architecture": architecture,
        "compile": compiled,
        "arguments": described,
        "previous": previous,
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=repr).encode()).hexdigest()


def saved_weights(model_bytes: bytes) -> list[np.ndarray]:
    """The weights stored in a .keras archive, in the order of ``model.get_weights()``."""
    from autograder.sandbox.artifacts import load_model_bytes

    return load_model_bytes(model_bytes).get_weights()


def restore_optimizer(model, variables: list[np.ndarray]) -> None:
    optimizer = model.optimizer
    if not getattr(optimizer, "built", False):
        optimizer.build(model.trainable_variables)
    for variable, value in zip(optimizer.variables, variables):
        variable.assign(value)


# --- the trainer as a process of its own ------------------------------------------------------------


def main(inputs: Path, cache: str, reply_fd: int) -> int:
    """``python -m autograder.trainer.service INPUTS CACHE REPLY_FD``: frames in on stdin, out on REPLY_FD."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    from autograder import skip_slow_optional_imports

    skip_slow_optional_imports()
    images = np.load(inputs / "train_images.npy", mmap_mode="r")
    labels = np.load(inputs / "train_labels.npy", mmap_mode="r")
    test = np.load(inputs / "test_images.npy", mmap_mode="r")
    trainer = Trainer.from_images(images, labels, test, cache=Path(cache) if cache != "-" else None)
    import keras  # noqa: F401  (before the first request: the grader starts this while the child starts)

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
                return 0
            reply, reply_blobs = trainer.handle(header, blobs)
            out.write(frames.encode(reply, reply_blobs))


def npy_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    return buffer.getvalue()


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1]), sys.argv[2], int(sys.argv[3])))
