"""Training a submission's model: the Keras-default path and the kit's fast path.

The fast path changes only how Keras executes the training steps, never what they compute:
same model, loss, optimizer, metrics, batch size and epochs, each epoch's batches a fresh
shuffle of the training set. Measured by ``benchmarks/train_reference.py``, per-batch overhead,
not arithmetic, is what costs time for a network this small on a CPU, so the fast path removes it:

- ``WholeEpochSteps``: for the usual ``fit(x, y, ...)`` on arrays, one XLA program runs all of an
  epoch's full batches in a loop, slicing them from the arrays it holds, so neither Python nor
  ``tf.data`` nor a kernel launch sits between two batches; ``WholeEvaluation`` does the same for
  the validation pass after each epoch (whose ``tf.data`` pipeline otherwise kept a second core
  busy: ``benchmarks/parallel_ceiling.py``); the ``tf.data`` iterators Keras would still make
  each epoch, which these programs never read, are made only if something reads them
  (``DeferredIterator``);
- otherwise (a generator, sample weights, ``validation_split``, an operation XLA cannot compile)
  Keras's own loop with ``steps_per_execution`` batches per call and ``jit_compile=True``.

The kit's trainer (``autograder.trainer.service``) trains each ``fit`` call a submission describes on this
path. Keras's ``fit`` still runs the epochs, the callbacks, the validation and the history.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import sys
import time
from typing import Any, Callable

import numpy as np

from autograder.assignment import SEED

FAST_STEPS_PER_EXECUTION = 100


def use_fast_execution(model: Any, seed: int = SEED) -> Any:
    """Switch a compiled Keras model to the fast execution settings, in place.

    The attributes are set directly rather than by compiling again, so the optimizer object,
    the loss and the metrics the student compiled with stay exactly as they were (and so does
    ``model.get_compile_config()``, which the checks read). Keras builds its train, test and
    predict functions lazily from these attributes on the next ``fit``/``evaluate``/``predict``;
    ``fit`` on arrays additionally runs each epoch through ``WholeEpochSteps``, which shuffles
    with its own generator seeded by ``seed``: the process's global generators can be drawn from
    by anything, other threads included.
    """
    model.steps_per_execution = FAST_STEPS_PER_EXECUTION
    model.jit_compile = True
    model.train_function = model.test_function = model.predict_function = None
    fit = model.fit
    signature = inspect.signature(fit)
    generator = np.random.default_rng(seed)

    @functools.wraps(fit)
    def fit_whole_epochs(*args, **kwargs):
        steps = WholeEpochSteps.for_fit(model, signature.bind(*args, **kwargs).arguments, generator)
        if steps is None:
            return fit(*args, **kwargs)
        with steps.installed():
            return fit(*args, **kwargs)

    fit_whole_epochs.shuffle_generator = generator  # part of a training's inputs (TrainingCache.key)
    model.fit = fit_whole_epochs
    return model


class BatchPrograms:
    """A Keras step run over batches that it slices from arrays held as tensors.

    All full batches run in one XLA-compiled ``tf.while_loop``, the last partial batch in a second
    small program, so neither Python nor ``tf.data`` nor a kernel launch sits between two batches.
    ``step`` is the model's own ``train_step`` or ``test_step``.
    """

    def __init__(self, step: Callable, x, y, batch_size: int):
        import keras
        import tensorflow as tf

        if np.issubdtype(x.dtype, np.floating):  # Keras computes in floatx whatever the input
            x = x.astype(keras.config.floatx(), copy=False)
        self.step = step
        self.x, self.y = tf.constant(x), tf.constant(y)
        self.samples, self.batch_size = len(x), batch_size
        self.full_batches, self.partial_batch = divmod(self.samples, batch_size)
        self.run_full_batches = tf.function(self._full_batches, jit_compile=True)
        self.run_batch = tf.function(self._batch, jit_compile=True)
        self.ran = False  # whether a program has run (and so made its updates)

    @property
    def batches(self) -> int:
        return self.full_batches + (1 if self.partial_batch else 0)

    def run(self, order: np.ndarray) -> None:
        """The step on each batch of ``order``, a permutation of the samples, in turn."""
        import tensorflow as tf

        full = self.full_batches * self.batch_size
        if self.full_batches:
            self.run_full_batches(tf.constant(order[:full]))
            self.ran = True
        if self.partial_batch:
            self.run_batch(tf.constant(order[full:]))
            self.ran = True

    def _batch(self, indices):
        import tensorflow as tf

        self.step((tf.gather(self.x, indices), tf.gather(self.y, indices)))
        return tf.constant(0)  # an output keeps the program, and its variable updates, in one call

    def _full_batches(self, order):
        import tensorflow as tf

        def step(index):
            self._batch(tf.slice(order, [index * self.batch_size], [self.batch_size]))
            return (index + 1,)

        tf.while_loop(lambda index: index < self.full_batches, step, [tf.constant(0)])
        return tf.constant(0)


def usual_arrays(x, y, batch_size) -> bool:
    """Arrays of numbers and a batch size as ``BatchPrograms`` takes them (Keras's loop takes the rest)."""
    return (
        isinstance(x, np.ndarray)
        and isinstance(y, np.ndarray)
        and x.ndim >= 1
        and len(x) == len(y) > 0
        and x.dtype.kind in "iuf"
        and y.dtype.kind in "iuf"
        and type(batch_size) is int
        and batch_size > 0
    )


class DeferredIterator:
    """Stands for a ``tf.data`` iterator over one epoch's batches until something reads from it.

    Keras's ``fit`` makes two such iterators per epoch for the training set and two for the
    validation set, each with its own thread pool whose threads start shuffling, slicing and
    prefetching batches at once. The whole-epoch programs never read them (they slice the
    batches from the arrays themselves), so making them cost every epoch time on the training
    thread and work on other cores for nothing (``benchmarks/train_reference.py``). Where Keras's
    own functions must run after all (a fallback, a callback evaluating on the same arrays),
    ``real`` makes the iterator then.
    """

    def __init__(self, dataset):
        self.dataset = dataset
        self._iterator = None

    def real(self):
        if self._iterator is None:
            self._iterator = iter(self.dataset)
        return self._iterator

    def __iter__(self):
        return self

    def __next__(self):
        return next(self.real())


class DeferredDataset:
    def __init__(self, dataset):
        self.dataset = dataset

    def __iter__(self):
        return DeferredIterator(self.dataset)


def real_iterator(iterator):
    return iterator.real() if isinstance(iterator, DeferredIterator) else iterator


@contextlib.contextmanager
def deferred_epoch_iterators(arrays: list[tuple[Any, Any]]):
    """Within the block, Keras's epoch iterators over exactly these ``(x, y)`` arrays (the same
    objects) hand out ``DeferredIterator``s; every other iterator is Keras's own."""
    try:
        from keras.src.backend.tensorflow.trainer import TFEpochIterator
    except ImportError:  # another Keras layout: its iterators stay as they are
        yield
        return
    original = TFEpochIterator.__init__

    @functools.wraps(original)
    def init(iterator, *args, **kwargs):
        original(iterator, *args, **kwargs)
        dataset = getattr(iterator, "_distributed_dataset", None)
        ours = any(kwargs.get("x") is x and kwargs.get("y") is y for x, y in arrays)
        if ours and dataset is not None and not args:
            iterator._get_iterator = lambda: DeferredDataset(dataset)

    TFEpochIterator.__init__ = init
    try:
        yield
    finally:
        TFEpochIterator.__init__ = original


class WholeEpochSteps:
    """A Keras train function that runs a whole epoch of batches in one compiled XLA program.

    Keras's ``fit`` calls its train function once per ``steps_per_execution`` batches with an
    iterator over the batches; with ``steps_per_execution`` set to the epoch's number of batches
    it calls this object once per epoch. It leaves the iterator alone and draws the batches
    itself, as Keras's array adapter does: a fresh random permutation of the samples each epoch
    (or their order, with ``shuffle=False``), cut into full batches and a last partial one, run
    by ``BatchPrograms`` around ``model.train_step`` (the same step Keras runs: forward pass, loss,
    gradients, optimizer update, metrics). The validation pass of the same ``fit`` runs the same
    way (``WholeEvaluation``). If XLA cannot compile the step (a layer without an XLA kernel),
    the first call hands over to Keras's own loop without XLA, before any update is made.
    """

    def __init__(
        self, model: Any, x, y, batch_size: int, shuffle: bool, generator: np.random.Generator, validation=None
    ):
        self.model = model
        self.arrays = [(x, y)]  # as fit was given them: Keras's iterators over them are deferred
        self.programs = BatchPrograms(model.train_step, x, y, batch_size)
        self.samples, self.shuffle = self.programs.samples, shuffle
        self.generator = generator
        self.keras_function = None
        self.calls = 0
        self.evaluation = WholeEvaluation.for_fit(model, validation, batch_size, executions=self.programs.batches)
        if self.evaluation is not None:
            self.arrays.append(self.evaluation.arrays)

    @classmethod
    def for_fit(cls, model: Any, arguments: dict[str, Any], generator: np.random.Generator) -> "WholeEpochSteps | None":
        """The whole-epoch steps for this ``fit`` call, or None where Keras's loop must run it."""
        x, y = arguments.get("x"), arguments.get("y")
        batch_size = arguments.get("batch_size")
        batch_size = 32 if batch_size is None else batch_size  # Keras's default
        shuffle = arguments.get("shuffle", True)
        usual = (
            usual_arrays(x, y, batch_size)
            and type(shuffle) is bool
            and not arguments.get("validation_split")
            and all(arguments.get(name) is None for name in ("sample_weight", "class_weight", "steps_per_epoch"))
            and getattr(model, "optimizer", None) is not None
        )
        if not usual:
            return None
        validation = {
            name: arguments.get(name) for name in ("validation_data", "validation_batch_size", "validation_steps")
        }
        return cls(model, x, y, batch_size, shuffle, generator, validation)

    @contextlib.contextmanager
    def installed(self):
        """Have the next ``fit`` call this once per epoch; restore the model's settings after."""
        model = self.model
        saved = model.steps_per_execution
        model.steps_per_execution = self.programs.batches
        model.train_function, model.test_function = self, self.evaluation
        try:
            with deferred_epoch_iterators(self.arrays):
                yield
        finally:
            model.steps_per_execution = saved
            model.train_function = model.test_function = None

    def __call__(self, iterator):
        if self.keras_function is not None:
            return self.keras_function(real_iterator(iterator))
        order = self.generator.permutation(self.samples) if self.shuffle else np.arange(self.samples)
        first = self.calls == 0
        self.calls += 1
        try:
            self.programs.run(order)
        except Exception:
            if not first or self.programs.ran:
                raise
            # XLA could not compile this model's step (nothing was updated yet): Keras's own loop
            # runs it without XLA, as Keras's defaults would, and so do evaluation and prediction.
            model = self.model
            model.jit_compile = False
            model.predict_function = None
            if self.evaluation is None:
                model.test_function = None
            else:  # its passes go to Keras's function too, now made without XLA, with real iterators
                self.evaluation.hand_over_to_keras()
            model.make_train_function(force=True)
            self.keras_function, model.train_function = model.train_function, self
            return self.keras_function(real_iterator(iterator))
        return self.model.get_metrics_result()


class WholeEvaluation:
    """A Keras test function for ``fit``'s validation pass: all validation batches in one XLA program.

    Each epoch ``fit`` calls ``evaluate`` on its cached validation iterator, which calls the test
    function once (the validation batches fit in one ``steps_per_execution``); this object runs
    ``model.test_step`` over the validation arrays in order, in the batches Keras would cut, and
    returns the metrics as Keras's function does. Any other iterator (a callback evaluating on
    data of its own) goes to Keras's own test function, as does everything after a first call
    that XLA could not compile.
    """

    def __init__(self, model: Any, x, y, batch_size: int):
        self.model = model
        self.arrays = (x, y)
        self.programs = BatchPrograms(model.test_step, x, y, batch_size)
        self.order = np.arange(self.programs.samples)
        self.failed = False
        self._keras_function = None

    @classmethod
    def for_fit(cls, model: Any, validation: dict | None, batch_size: int, executions: int) -> "WholeEvaluation | None":
        validation = validation or {}
        data = validation.get("validation_data")
        if not isinstance(data, (tuple, list)) or len(data) != 2 or validation.get("validation_steps") is not None:
            return None
        x, y = data
        size = validation.get("validation_batch_size") or batch_size
        if not usual_arrays(x, y, size) or -(-len(x) // size) > executions:
            return None  # Keras would call its test function more than once per validation pass
        return cls(model, x, y, size)

    def is_validation(self, iterator) -> bool:
        cached = getattr(self.model, "_eval_epoch_iterator", None)
        return iterator is not None and iterator is getattr(cached, "_current_iterator", None)

    def hand_over_to_keras(self) -> None:
        """From now on every pass runs in Keras's own test function, made afresh when next needed."""
        self.failed, self._keras_function = True, None

    def keras_function(self):
        if self._keras_function is None:
            model = self.model
            model.test_function = None
            model.make_test_function()
            self._keras_function, model.test_function = model.test_function, self
        return self._keras_function

    def __call__(self, iterator):
        if not self.failed and self.is_validation(iterator):
            first = not self.programs.ran
            try:
                self.programs.run(self.order)
                return self.model.get_metrics_result()
            except Exception:
                if not first:
                    raise
                # Evaluation changes nothing but the metrics, which Keras's function counts afresh.
                self.hand_over_to_keras()
                self.model.reset_metrics()
        return self.keras_function()(real_iterator(iterator))


def epoch_progress(out=sys.stdout):
    """A Keras callback printing one plain line per epoch: readable in a terminal and in a log. A metric's name
    is the student's (a TA may check a student's notebook): shown escaped."""
    import keras

    from autograder.text import terminal_text

    class EpochProgress(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            self.epochs = self.params.get("epochs")

        def on_epoch_begin(self, epoch, logs=None):
            self.started = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            metrics = "  ".join(f"{terminal_text(name)} {value:.4f}" for name, value in (logs or {}).items())
            seconds = time.perf_counter() - self.started
            print(f"epoch {epoch + 1:>2}/{self.epochs}  {metrics}  ({seconds:.1f} s)", file=out, flush=True)

    return EpochProgress()
