"""Training the lesson's model: the Keras-default path and the kit's fast path.

The fast path changes only how Keras executes the training steps, never what they compute:
same model, loss, optimizer, metrics, batch size (32) and epochs. Two execution settings
carry it (measured by ``benchmarks/train_reference.py``):

- ``steps_per_execution``: Keras runs that many batches inside one compiled TensorFlow loop
  instead of returning to Python after every batch; per-batch Python overhead dominates a
  network this small on a CPU;
- ``jit_compile=True``: XLA fuses each step's matrix products, activations, loss and SGD
  update into one compiled kernel.

Inputs are given as float32, the dtype the model computes in: float64 arrays would be
converted on every batch.
"""

from __future__ import annotations

import functools
import inspect
import os
import sys
import time
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from autograder.assignment import EPOCHS, N_VALID, SEED

FAST_STEPS_PER_EXECUTION = 100


def quiet_tensorflow() -> None:
    """Silence TensorFlow's C++ start-up chatter on stderr before TensorFlow is imported."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("MPLBACKEND", "Agg")


def use_fast_execution(model: Any) -> Any:
    """Switch a compiled Keras model to the fast execution settings, in place.

    The attributes are set directly rather than by compiling again, so the optimizer object,
    the loss and the metrics the student compiled with stay exactly as they were (and so does
    ``model.get_compile_config()``, which the checks read). Keras builds its train, test and
    predict functions lazily from these attributes on the next ``fit``/``evaluate``/``predict``.
    """
    model.steps_per_execution = FAST_STEPS_PER_EXECUTION
    model.jit_compile = True
    model.train_function = model.test_function = model.predict_function = None
    return model


def override_fit_options(model: Any, *, verbose: int = 0, callbacks: list = ()) -> Any:
    """Make the student's own ``model.fit(...)`` call run with the kit's display and callbacks.

    Only how training is shown changes (Keras's progress bar is replaced); the arguments that
    decide what is computed (data, epochs, batch size, validation data) stay the student's.
    """
    fit = model.fit
    signature = inspect.signature(fit)

    @functools.wraps(fit)
    def fit_with_kit_options(*args, **kwargs):
        bound = signature.bind(*args, **kwargs)
        bound.arguments["verbose"] = verbose
        bound.arguments["callbacks"] = [*(bound.arguments.get("callbacks") or []), *callbacks]
        return fit(*bound.args, **bound.kwargs)

    model.fit = fit_with_kit_options
    return model


def epoch_progress(out=sys.stdout):
    """A Keras callback printing one plain line per epoch: readable in a terminal and in a log."""
    import keras

    class EpochProgress(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            self.epochs = self.params.get("epochs")

        def on_epoch_begin(self, epoch, logs=None):
            self.started = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            metrics = "  ".join(f"{name} {value:.4f}" for name, value in (logs or {}).items())
            seconds = time.perf_counter() - self.started
            print(f"epoch {epoch + 1:>2}/{self.epochs}  {metrics}  ({seconds:.1f} s)", file=out, flush=True)

    return EpochProgress()


@dataclass
class TrainingRun:
    model: Any
    history: dict[str, list[float]]
    test_loss: float
    test_accuracy: float
    train_seconds: float
    epochs: int


def train_lesson(
    functions: dict[str, Callable],
    dataset,
    *,
    fast: bool = True,
    epochs: int = EPOCHS,
    seed: int = SEED,
    progress=None,
) -> TrainingRun:
    """Run the lesson's pipeline with the notebook's own functions and time its training.

    ``functions`` are the contract functions loaded from a notebook; ``dataset`` is what
    ``load_fashion_mnist()`` returns. ``progress``, a file, gets one line per epoch; without
    it training is silent.
    """
    quiet_tensorflow()
    import keras

    (train_images, train_labels), (test_images, test_labels) = dataset
    normalize, split = functions["normalize"], functions["split_validation"]
    (X_train, y_train), (X_valid, y_valid) = split(normalize(train_images), train_labels, N_VALID)
    X_train, X_valid = np.asarray(X_train, np.float32), np.asarray(X_valid, np.float32)
    X_test = np.asarray(normalize(test_images), np.float32)

    keras.utils.set_random_seed(seed)
    model = functions["compile_model"](functions["build_model"]())
    if fast:
        use_fast_execution(model)
    override_fit_options(model, verbose=0, callbacks=[epoch_progress(progress)] if progress else [])
    start = time.perf_counter()
    history = functions["train_model"](model, X_train, y_train, X_valid, y_valid, epochs=epochs)
    train_seconds = time.perf_counter() - start
    test_loss, test_accuracy = model.evaluate(X_test, test_labels, verbose=0)[:2]
    return TrainingRun(
        model=model,
        history={key: [float(v) for v in values] for key, values in history.history.items()},
        test_loss=float(test_loss),
        test_accuracy=float(test_accuracy),
        train_seconds=train_seconds,
        epochs=len(history.epoch),
    )
