"""The fast training path: the same computation as Keras defaults, and the lesson's accuracy."""

from __future__ import annotations

import types

import numpy as np
import pytest

from autograder.trainer.fast_path import (
    FAST_STEPS_PER_EXECUTION,
    DeferredIterator,
    WholeEpochSteps,
    WholeEvaluation,
    use_fast_execution,
)


def small_run(functions, dataset, fast: bool, shuffle: bool = False):
    import keras

    (train_images, train_labels), _ = dataset
    X, y = functions["normalize"](train_images[:3200]), train_labels[:3200]
    keras.utils.set_random_seed(7)
    model = functions["compile_model"](functions["build_model"]())
    if fast:
        use_fast_execution(model)
    # 2550 samples: 79 full batches of 32 and a last one of 22, as 55000 gives 1718 and 24.
    history = model.fit(X[:2550], y[:2550], epochs=2, validation_data=(X[2560:], y[2560:]), shuffle=shuffle, verbose=0)
    return model, history.history


def count_whole_epoch_calls(monkeypatch) -> list:
    calls = []
    original = WholeEpochSteps.__call__

    def counted(self, iterator):
        calls.append(self.keras_function is None)
        return original(self, iterator)

    monkeypatch.setattr(WholeEpochSteps, "__call__", counted)
    return calls


def count_whole_validations(monkeypatch) -> list:
    calls = []
    original = WholeEvaluation.__call__

    def counted(self, iterator):
        calls.append(not self.failed and self.is_validation(iterator))
        return original(self, iterator)

    monkeypatch.setattr(WholeEvaluation, "__call__", counted)
    return calls


def count_direct_reads(monkeypatch) -> list:
    """Stand-in iterators read directly: Keras's functions must get real tf.data iterators, never one."""
    reads = []
    original = DeferredIterator.__next__
    monkeypatch.setattr(DeferredIterator, "__next__", lambda self: reads.append(self) or original(self))
    return reads


def test_the_fast_path_changes_execution_only(reference_functions, dataset, monkeypatch):
    default_model, default_history = small_run(reference_functions, dataset, fast=False)
    whole_epochs = count_whole_epoch_calls(monkeypatch)
    whole_validations = count_whole_validations(monkeypatch)
    fast_model, fast_history = small_run(reference_functions, dataset, fast=True)

    assert whole_epochs == [True, True], "each epoch ran as one XLA program"
    assert whole_validations == [True, True], "so did each validation pass"
    assert fast_model.steps_per_execution == FAST_STEPS_PER_EXECUTION and fast_model.jit_compile
    # What the student compiled with is untouched: the same optimizer, loss and metrics.
    fast_config, default_config = fast_model.get_compile_config(), default_model.get_compile_config()
    for config in (fast_config, default_config):
        config["optimizer"]["config"].pop("name")  # Keras numbers each new optimizer: sgd, sgd_1
    assert fast_config == default_config
    assert type(fast_model.optimizer).__name__ == "SGD"
    assert int(fast_model.optimizer.iterations) == int(default_model.optimizer.iterations) == 2 * 80
    # Same batches in the same order (shuffle=False), same updates: the numbers agree up to float
    # rounding (XLA fuses operations in another order), which can flip an image or two near a
    # class boundary.
    assert set(fast_history) == set(default_history) == {"loss", "accuracy", "val_loss", "val_accuracy"}
    for key in ("loss", "val_loss"):
        assert np.allclose(fast_history[key], default_history[key], rtol=1e-3), key
    for key in ("accuracy", "val_accuracy"):
        assert np.allclose(fast_history[key], default_history[key], atol=0.01), key
    for fast_w, default_w in zip(fast_model.get_weights(), default_model.get_weights()):
        assert np.abs(fast_w - default_w).max() < 1e-3


def test_with_shuffling_both_paths_learn_alike(reference_functions, dataset):
    _, default_history = small_run(reference_functions, dataset, fast=False, shuffle=True)
    _, fast_history = small_run(reference_functions, dataset, fast=True, shuffle=True)
    # Different random orders, so not the same numbers; the same learning all the same.
    assert abs(fast_history["val_accuracy"][-1] - default_history["val_accuracy"][-1]) < 0.05
    assert fast_history["loss"][1] < fast_history["loss"][0]


def test_the_validation_pass_gives_what_keras_s_evaluate_gives(reference_functions, dataset, monkeypatch):
    import keras

    (train_images, train_labels), _ = dataset
    X, y = reference_functions["normalize"](train_images[:1400]), train_labels[:1400]
    keras.utils.set_random_seed(7)
    model = use_fast_execution(reference_functions["compile_model"](reference_functions["build_model"]()))
    whole_validations = count_whole_validations(monkeypatch)
    elsewhere = []

    class EvaluateElsewhere(keras.callbacks.Callback):
        """A student's callback evaluating on data of its own during fit: Keras's function runs it."""

        def on_epoch_end(self, epoch, logs=None):
            elsewhere.append(self.model.evaluate(X[:100], y[:100], verbose=0, return_dict=True))

    # 650 validation samples: 20 full batches of 32 and a last one of 10, weighted by its size.
    history = model.fit(X[:700], y[:700], epochs=2, validation_data=(X[750:], y[750:]), verbose=0,
                        callbacks=[EvaluateElsewhere()]).history
    assert whole_validations.count(True) == 2 and whole_validations.count(False) == 2
    after = model.evaluate(X[750:], y[750:], verbose=0, return_dict=True)  # Keras's own, outside fit
    assert np.isclose(history["val_loss"][-1], after["loss"], rtol=1e-5)
    assert np.isclose(history["val_accuracy"][-1], after["accuracy"], atol=1e-6)
    again = model.evaluate(X[:100], y[:100], verbose=0, return_dict=True)
    assert np.isclose(elsewhere[-1]["loss"], again["loss"], rtol=1e-5)
    assert elsewhere[-1]["loss"] != history["val_loss"][-1]


def test_fit_makes_no_tf_data_iterator_that_the_whole_epoch_programs_would_not_read(
    reference_functions, dataset, monkeypatch
):
    import keras
    from keras.src.backend.tensorflow.trainer import TFEpochIterator
    from tensorflow.python.data.ops import iterator_ops

    made = []
    original = iterator_ops.OwnedIterator.__init__

    def counted(self, dataset=None, *args, **kwargs):
        if dataset is not None:  # not one rebuilt from its parts while a function is traced
            made.append(self)
        original(self, dataset, *args, **kwargs)

    monkeypatch.setattr(iterator_ops.OwnedIterator, "__init__", counted)
    keras_init = TFEpochIterator.__init__
    (train_images, train_labels), _ = dataset
    X, y = reference_functions["normalize"](train_images[:900]), train_labels[:900]
    x_valid, y_valid = X[700:], y[700:]
    model = use_fast_execution(reference_functions["compile_model"](reference_functions["build_model"]()))
    during = []

    class EvaluateTheSameArrays(keras.callbacks.Callback):
        """A callback evaluating on fit's own validation arrays: Keras's function gets a real iterator."""

        def on_epoch_end(self, epoch, logs=None):
            before = len(made)
            during.append(self.model.evaluate(x_valid, y_valid, verbose=0, return_dict=True))
            during[-1]["iterators"] = len(made) - before

    model.fit(X[:700], y[:700], epochs=2, validation_data=(x_valid, y_valid), verbose=0)
    assert made == [], "Keras made no iterator over the training or validation arrays"
    history = model.fit(X[:700], y[:700], epochs=2, validation_data=(x_valid, y_valid), verbose=0,
                        callbacks=[EvaluateTheSameArrays()]).history
    assert [entry["iterators"] for entry in during] == [1, 1]
    assert np.isclose(during[-1]["loss"], history["val_loss"][-1], rtol=1e-5)
    assert TFEpochIterator.__init__ is keras_init, "Keras's own iterators once fit is done"
    after = model.evaluate(x_valid, y_valid, verbose=0, return_dict=True)
    assert np.isclose(after["loss"], history["val_loss"][-1], rtol=1e-5)


def test_a_validation_pass_xla_cannot_compile_goes_to_keras(reference_functions, dataset, monkeypatch):

    from autograder.trainer.fast_path import BatchPrograms

    original = BatchPrograms.run

    def fails_to_compile_tests(self, order):
        if self.step.__name__ == "test_step":
            raise RuntimeError("no XLA kernel")
        return original(self, order)

    monkeypatch.setattr(BatchPrograms, "run", fails_to_compile_tests)
    (train_images, train_labels), _ = dataset
    X, y = reference_functions["normalize"](train_images[:800]), train_labels[:800]
    model = use_fast_execution(reference_functions["compile_model"](reference_functions["build_model"]()))
    whole_validations = count_whole_validations(monkeypatch)
    read_directly = count_direct_reads(monkeypatch)
    history = model.fit(X[:600], y[:600], epochs=2, validation_data=(X[600:], y[600:]), verbose=0).history
    assert whole_validations == [True, False], "the first pass found out, the second went straight to Keras"
    assert read_directly == []
    after = model.evaluate(X[600:], y[600:], verbose=0, return_dict=True)
    assert np.isclose(history["val_loss"][-1], after["loss"], rtol=1e-5)


@pytest.mark.parametrize(
    "validation",
    [
        {"validation_steps": 1},
        {"validation_data": "with_sample_weights"},
        {"validation_data": "more_batches_than_training"},
        {"validation_batch_size": 16.0},
    ],
    ids=["validation_steps", "sample_weights", "longer_than_an_epoch", "float_batch_size"],
)
def test_unusual_validation_runs_in_keras_s_own_loop(reference_functions, validation):
    model = reference_functions["compile_model"](reference_functions["build_model"]())
    x, y = np.zeros((64, 28, 28), np.float32), np.zeros(64, np.uint8)
    data = {
        "with_sample_weights": (x, y, np.ones(64)),
        "more_batches_than_training": (np.zeros((65, 28, 28), np.float32), np.zeros(65, np.uint8)),
    }
    usual = {"validation_data": (x, y)}
    unusual = {**usual, **validation}
    if isinstance(unusual["validation_data"], str):
        unusual["validation_data"] = data[unusual["validation_data"]]
    generator = np.random.default_rng(0)
    assert WholeEpochSteps.for_fit(model, {"x": x, "y": y, **usual}, generator).evaluation is not None
    assert WholeEpochSteps.for_fit(model, {"x": x, "y": y, **unusual}, generator).evaluation is None


def recorded_orders(steps: WholeEpochSteps, epochs: int) -> list[np.ndarray]:
    orders = []

    def record(order):
        orders.append(np.asarray(order))

    steps.programs.run_full_batches = steps.programs.run_batch = record
    steps.model = types.SimpleNamespace(get_metrics_result=dict)  # no training: the orders only
    for _ in range(epochs):
        steps(iterator=None)
    return [np.concatenate(orders[i : i + 2]) for i in range(0, 2 * epochs, 2)]


def test_each_epoch_draws_every_sample_once_in_a_fresh_order(reference_functions):
    import keras

    model = reference_functions["compile_model"](reference_functions["build_model"]())
    x, y = np.zeros((100, 28, 28), np.float32), np.zeros(100, np.uint8)
    def steps(shuffle, seed=3):
        return WholeEpochSteps(model, x, y, batch_size=32, shuffle=shuffle, generator=np.random.default_rng(seed))

    first, second = recorded_orders(steps(shuffle=True), epochs=2)
    assert sorted(first) == sorted(second) == list(range(100))
    assert not np.array_equal(first, second)
    again, _ = recorded_orders(steps(shuffle=True), epochs=2)
    assert np.array_equal(first, again), "the same seed, the same orders"
    other, _ = recorded_orders(steps(shuffle=True, seed=4), epochs=2)
    assert not np.array_equal(first, other)
    (in_order,) = recorded_orders(steps(shuffle=False), epochs=1)
    assert np.array_equal(in_order, np.arange(100))
    assert keras.config.floatx() == "float32"


@pytest.mark.parametrize(
    "arguments",
    [
        {"sample_weight": np.ones(64)},
        {"validation_split": 0.1},
        {"shuffle": "batch"},
        {"steps_per_epoch": 1},
        {"batch_size": 0},
    ],
    ids=["sample_weight", "validation_split", "shuffle_batch", "steps_per_epoch", "bad_batch_size"],
)
def test_unusual_fit_calls_run_in_keras_s_own_loop(reference_functions, arguments):
    model = reference_functions["compile_model"](reference_functions["build_model"]())
    x, y = np.zeros((64, 28, 28), np.float32), np.zeros(64, np.uint8)
    generator = np.random.default_rng(0)
    assert WholeEpochSteps.for_fit(model, {"x": x, "y": y}, generator) is not None
    assert WholeEpochSteps.for_fit(model, {"x": x, "y": y, **arguments}, generator) is None
    assert WholeEpochSteps.for_fit(model, {"x": iter([x]), "y": None}, generator) is None


def test_a_model_xla_cannot_compile_still_trains(monkeypatch):
    import keras
    import tensorflow as tf

    class Through(keras.layers.Layer):
        """An operation with no XLA kernel, which Keras's defaults run all the same."""

        def call(self, inputs):
            result = tf.numpy_function(lambda a: a, [inputs], tf.float32)
            result.set_shape(inputs.shape)
            return result

    keras.utils.set_random_seed(7)
    model = keras.Sequential([keras.Input(shape=(4,)), Through(), keras.layers.Dense(2, activation="softmax")])
    model.compile(loss="sparse_categorical_crossentropy", optimizer="sgd", metrics=["accuracy"])
    use_fast_execution(model)
    whole_epochs = count_whole_epoch_calls(monkeypatch)
    read_directly = count_direct_reads(monkeypatch)
    x, y = np.random.rand(96, 4).astype(np.float32), np.random.randint(0, 2, 96)
    history = model.fit(x, y, epochs=3, validation_data=(x[:10], y[:10]), verbose=0)
    assert whole_epochs == [True, False, False], "the first epoch found out, the others went straight to Keras"
    assert len(history.history["loss"]) == 3 and int(model.optimizer.iterations) == 3 * 3
    assert read_directly == []
    after = model.evaluate(x[:10], y[:10], verbose=0, return_dict=True)
    assert np.isclose(history.history["val_loss"][-1], after["loss"], rtol=1e-5)


@pytest.mark.slow
def test_the_reference_solution_reaches_the_lesson_s_accuracy_in_30_epochs(tmp_path, real_data_dir):
    from autograder.demo import run_demo

    plot = tmp_path / "curves.png"
    run = run_demo(data_dir=real_data_dir, plot_path=plot)
    assert run.epochs == 30
    assert set(run.history) == {"loss", "accuracy", "val_loss", "val_accuracy"}
    assert run.test_accuracy >= 0.86
    assert plot.read_bytes().startswith(b"\x89PNG")


def tiny_data(dataset):
    (train_images, train_labels), _ = dataset
    X, y = (train_images[:160] / 255.0).astype(np.float32), train_labels[:160]
    return types.SimpleNamespace(X_train=X[:96], y_train=y[:96], X_valid=X[96:128], y_valid=y[96:128],
                                 X_test=X[128:], test_labels=y[128:])


def test_a_demo_training_is_seeded_whole_by_its_seed(reference_functions, dataset):
    from autograder.demo import train_submission

    run = train_submission(reference_functions, tiny_data(dataset), epochs=1, seed=7)
    assert run.error is None and run.epochs == 1 and 0 <= run.test_accuracy <= 1
    # The fast path's batch order is drawn from the run's seed too, not from the kit's default.
    assert run.model.fit.shuffle_generator.bit_generator.seed_seq.entropy == 7
    assert [call.epochs_run for call in run.fit_calls] == [1]


def test_a_demo_training_says_which_function_failed(reference_functions, dataset):
    from autograder.demo import train_submission

    def stub():
        raise NotImplementedError

    data = tiny_data(dataset)
    unfinished = train_submission({**reference_functions, "build_model": stub}, data, epochs=1)
    assert unfinished.error.startswith("not done yet: `build_model`")
    uncompiled = train_submission({**reference_functions, "compile_model": lambda model: None}, data, epochs=1)
    assert uncompiled.error == "`compile_model` returned None: return the compiled model" and uncompiled.model is None
    missing = train_submission({**reference_functions, "train_model": None}, data, epochs=1)
    assert missing.error.startswith("`train_model` is not defined")


# --- the training check, on the trainer's records: epochs and arrays passed on -----------------------


def judged_training(short_epochs=2, short_x="X_valid", short_validation=("X_train", "y_train"), probe_calls=1,
                    claimed=None, graded_continues=False, probe_errors=None):
    """check_training on a record of a correct 30-epoch training after the short call described."""
    from autograder.judge.checks import CHECKS_BY_ID
    from autograder.judge.evidence import Evidence, run_check
    from autograder.judge.training_checks import probe_model_signature
    from autograder.sandbox.artifacts import Artifacts
    from autograder.trainer.records import FitRecord, TrainingRecord

    def call(epochs, x, validation, architecture=None):
        history = {key: [0.5] * epochs for key in ("loss", "accuracy", "val_loss", "val_accuracy")}
        y = {"X_train": "y_train", "X_valid": "y_valid"}[x]
        return FitRecord(
            trained=True, epochs_run=epochs, history=history, x=x, y=y, validation=list(validation),
            architecture=architecture,
        )

    short = [call(short_epochs, short_x, short_validation, probe_model_signature())][:probe_calls]
    calls = [*short, call(30, "X_train", ["X_valid", "y_valid"], "the student's network")]
    calls[-1].continues = graded_continues
    artifacts = Artifacts(errors=dict(probe_errors or {}), values={"training": {
        "returned": "History", "returned_the_history": True, "fit_calls": len(calls),
        "epochs_probe_calls": probe_calls if claimed is None else claimed, "epochs_probe_error": None,
    }})
    return run_check(CHECKS_BY_ID["training"], Evidence(artifacts, None, TrainingRecord(calls=calls)))


def test_the_training_check_proves_that_epochs_and_the_arrays_given_are_used():
    assert judged_training().passed
    ignores_epochs = judged_training(short_epochs=30)
    assert not ignores_epochs.passed and "ignores its epochs argument" in ignores_epochs.message
    assert "trained for 30 epochs" in ignores_epochs.message
    own_validation = judged_training(short_validation=("X_valid", "y_valid"))
    assert not own_validation.passed
    assert "does not validate on the validation data it is given" in own_validation.message
    own_training_set = judged_training(short_x="X_train")
    assert not own_training_set.passed and "does not train on the arrays it is given" in own_training_set.message
    both = judged_training(short_epochs=30, short_validation=("X_valid", "y_valid"))
    assert "ignores its epochs argument" in both.message and "does not validate" in both.message
    no_short_call = judged_training(probe_calls=0)
    assert not no_short_call.passed and "never called model.fit" in no_short_call.message
    # The child's count of the short call's fit calls is a claim: more than the trainer saw moves no
    # call of the training graded among them.
    inflated = judged_training(short_epochs=30, probe_calls=1, claimed=2)
    assert "ignores its epochs argument" in inflated.message and "never called" not in inflated.message


def test_a_training_graded_that_goes_on_from_the_short_call_s_weights_fails():
    """A `train_model` that sets the weights the short call left on the model graded trains on from them
    (the trainer continues its own chain): epochs on the validation set that no record of the training
    graded counts (helper-71 L2)."""
    went_on = judged_training(graded_continues=True)
    assert not went_on.passed and "went on from the weights of an earlier call" in went_on.message


@pytest.mark.parametrize("probe, function", [("build_model", "build_model"), ("compile", "compile_model"),
                                             ("model:built", "build_model")])
def test_a_training_whose_model_the_grader_could_not_compare_with_build_model_s_fails(probe, function):
    """A `build_model` that fails when the grader calls it alone and builds another network for the
    training: the comparison that proves the model trained is the one checked was skipped, and a
    network of 50 units kept training and test_accuracy (helper-73 F1)."""
    unproven = judged_training(probe_errors={probe: "it raised"})
    assert not unproven.passed and f"cannot be shown to be the one `{function}` gives" in unproven.message
