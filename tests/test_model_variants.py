"""Models and compile settings as students write them: each correct way keeps its points, and a model that
cannot learn, or that carries its weights in its configuration, gets none for what it never learned."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from autograder.errors import ArtifactError
from autograder.sandbox import model_archive, model_config
from autograder.sandbox.fit_client import FitClient, LocalTransport, saved_model
from autograder.trainer.service import Trainer


def lesson_model(kernel_initializer="glorot_uniform", output_activation="softmax", **compile_options):
    import keras

    keras.utils.set_random_seed(42)
    model = keras.Sequential([
        keras.Input(shape=(28, 28)),
        keras.layers.Flatten(),
        keras.layers.Dense(30, activation="relu"),
        keras.layers.Dense(10, activation=output_activation, kernel_initializer=kernel_initializer, name="out"),
    ])
    model.compile(**{"loss": "sparse_categorical_crossentropy", "optimizer": "sgd", "metrics": ["accuracy"],
                     **compile_options})
    return model


def archived_config(model) -> dict:
    import json

    return json.loads(model_archive.read_model_archive(saved_model(model))["config.json"])


def test_a_constant_initializer_that_holds_weights_is_refused():
    import keras

    # The attack: layers fitted offline to the test labels, their numbers written in Constant(...), and a
    # learning rate of 0 so that training keeps them: 0.94 measured on the test set, with no training.
    smuggled = keras.initializers.Constant(np.random.default_rng(0).normal(size=(30, 10)).tolist())
    with pytest.raises(ArtifactError, match="Constant"):
        model_config.validate_model_config(archived_config(lesson_model(smuggled)))
    model_config.validate_model_config(archived_config(lesson_model(keras.initializers.Constant(0.1))))


@pytest.mark.parametrize("initializer", ["RandomNormal", "RandomUniform", "TruncatedNormal"])
def test_no_initializer_holds_weights_of_its_own(initializer):
    import keras

    weights = np.random.default_rng(0).normal(size=(30, 10)).tolist()
    smuggled = {  # a distribution of no spread around the weights: exactly them
        "RandomNormal": lambda: keras.initializers.RandomNormal(mean=weights, stddev=0.0),
        "RandomUniform": lambda: keras.initializers.RandomUniform(minval=weights, maxval=weights),
        "TruncatedNormal": lambda: keras.initializers.TruncatedNormal(mean=weights, stddev=0.0),
    }[initializer]()
    config = archived_config(lesson_model())
    config["config"]["layers"][2]["config"]["kernel_initializer"] = keras.saving.serialize_keras_object(smuggled)
    with pytest.raises(ArtifactError, match=initializer):
        model_config.validate_model_config(config)


def test_a_list_of_short_lists_counts_all_their_numbers():
    config = archived_config(lesson_model())
    config["config"]["layers"][2]["config"]["smuggled"] = [[0.5] * 100] * 300  # each list short, 30,000 in all
    with pytest.raises(ArtifactError, match="values in lists"):
        model_config.validate_model_config(config)


def test_no_list_in_a_model_s_configuration_is_longer_than_a_lesson_s_model_needs():
    config = archived_config(lesson_model())
    config["config"]["layers"][2]["config"]["smuggled"] = [0.5] * (model_config.MAX_CONFIG_LIST + 1)
    with pytest.raises(ArtifactError, match="values in lists"):
        model_config.validate_model_config(config)


@pytest.mark.parametrize("learning_rate", [0.0, -0.01, 1e-30, "schedule"])
def test_a_learning_rate_that_learns_nothing_fails_compile(learning_rate):
    import keras

    from autograder.judge.model_checks import compile_problems
    from autograder.sandbox.model_archive import load_model_bytes

    if learning_rate == "schedule":
        learning_rate = keras.optimizers.schedules.PiecewiseConstantDecay([10], [1e-30, 1e-31])
    model = load_model_bytes(saved_model(lesson_model(optimizer=keras.optimizers.SGD(learning_rate=learning_rate))))
    assert any("learning rate" in problem for problem in compile_problems(model))


@pytest.mark.parametrize("learning_rate", [0.01, 0.001, 1e-6, "schedule", "warm-up"])
def test_a_learning_rate_a_student_may_choose_passes_compile(learning_rate):
    import keras

    from autograder.judge.model_checks import compile_problems
    from autograder.sandbox.model_archive import load_model_bytes

    if learning_rate == "schedule":
        learning_rate = keras.optimizers.schedules.ExponentialDecay(0.01, decay_steps=1000, decay_rate=0.9)
    elif learning_rate == "warm-up":
        learning_rate = keras.optimizers.schedules.CosineDecay(0.0, 1000, warmup_target=0.05, warmup_steps=100)
    model = load_model_bytes(saved_model(lesson_model(optimizer=keras.optimizers.SGD(learning_rate=learning_rate))))
    assert compile_problems(model) == []


@pytest.mark.parametrize("metric", ["sparse_categorical_accuracy_function", "named_metric_object", "acc",
                                    "by_output_name", "nested_list", "weighted"])
def test_accuracy_in_each_of_its_spellings_passes_compile(metric):
    import keras

    from autograder.judge.model_checks import compile_problems
    from autograder.sandbox.model_archive import load_model_bytes

    options = {
        "sparse_categorical_accuracy_function": {"metrics": [keras.metrics.sparse_categorical_accuracy]},
        "named_metric_object": {"metrics": [keras.metrics.SparseCategoricalAccuracy(name="acc_sparse")]},
        "acc": {"metrics": ["acc"]},
        "by_output_name": {"metrics": {"out": "accuracy"}},
        "nested_list": {"metrics": [["accuracy"]]},
        "weighted": {"metrics": None, "weighted_metrics": ["accuracy"]},
    }[metric]
    model = load_model_bytes(saved_model(lesson_model(**options)))
    assert compile_problems(model) == []


@pytest.fixture(scope="module")
def small(dataset):
    (train_images, train_labels), (test_images, _) = dataset
    X = (train_images[:384] / 255.0).astype(np.float32)
    y = train_labels[:384]
    return {"X_train": X[64:], "y_train": y[64:], "X_valid": X[:64], "y_valid": y[:64]}, X[:64]


def test_model_history_is_what_fit_returned_as_keras_sets_it(small):
    arrays, test_images = small
    client = FitClient(LocalTransport(Trainer(arrays, test_images)), known=arrays)
    model = lesson_model()
    with client.installed(model):
        history = model.fit(arrays["X_train"], arrays["y_train"], epochs=1,
                            validation_data=(arrays["X_valid"], arrays["y_valid"]))
    assert model.history is history  # `return model.history` in train_model returns the History


def test_a_named_accuracy_metric_s_history_keys_are_accuracy_s(small):
    import keras

    from autograder.judge.model_checks import accuracy_keys

    arrays, test_images = small
    client = FitClient(LocalTransport(Trainer(arrays, test_images)), known=arrays)
    model = lesson_model(metrics=[keras.metrics.SparseCategoricalAccuracy(name="acc_sparse")])
    with client.installed(model):
        history = model.fit(arrays["X_train"], arrays["y_train"], epochs=1,
                            validation_data=(arrays["X_valid"], arrays["y_valid"]))
    keys = accuracy_keys(model.get_compile_config())
    assert "acc_sparse" in history.history and "acc_sparse" in keys
    assert accuracy_keys(lesson_model().get_compile_config()) >= {"accuracy", "acc"}


def test_tensorflow_s_own_softmax_as_older_tutorials_write_it_is_keras_s_softmax():
    import keras
    import tensorflow as tf

    from autograder.judge.network import activation_name
    from autograder.sandbox.model_archive import load_model_bytes

    model = keras.Sequential()
    with warnings.catch_warnings():  # Keras 3 prefers keras.Input; the tutorial's way still builds the model
        warnings.simplefilter("ignore")
        model.add(keras.layers.Flatten(input_shape=[28, 28]))
    model.add(keras.layers.Dense(30, activation=tf.nn.relu))
    model.add(keras.layers.Dense(10, activation=tf.nn.softmax))
    model.compile(loss="sparse_categorical_crossentropy", optimizer="sgd", metrics=["accuracy"])
    images = np.random.default_rng(0).random((4, 28, 28), dtype=np.float32)
    before = model.predict(images, verbose=0)
    loaded = load_model_bytes(saved_model(model))  # what the grader and the trainer read
    assert [activation_name(layer) for layer in loaded.layers[1:]] == ["relu", "softmax"]
    np.testing.assert_array_equal(loaded.predict(images, verbose=0), before)


@pytest.mark.parametrize("activation", ["softmax", "layer"])
def test_an_activation_given_as_a_keras_layer_is_what_it_computes(activation):
    import keras

    from autograder.judge.network import activation_name
    from autograder.sandbox.model_archive import load_model_bytes

    given = "softmax" if activation == "softmax" else keras.layers.Softmax()
    loaded = load_model_bytes(saved_model(lesson_model(output_activation=given)))
    assert activation_name(loaded.layers[-1]) == "softmax"


@pytest.mark.parametrize("carrier", ["Rescaling", "Normalization", "Sequential"])
def test_a_dense_layer_s_activation_is_an_activation_not_a_carrier_of_numbers(carrier):
    import keras

    numbers = np.random.default_rng(0).normal(size=30).tolist()
    activation = {  # constants fitted offline, kept by any learning rate: they are no variables
        "Rescaling": lambda: keras.layers.Rescaling(scale=numbers, offset=numbers),
        "Normalization": lambda: keras.layers.Normalization(mean=numbers, variance=[1.0] * 30),
        "Sequential": lambda: keras.Sequential([keras.layers.Rescaling(scale=numbers), keras.layers.ReLU()]),
    }[carrier]()
    config = archived_config(lesson_model())
    config["config"]["layers"][2]["config"]["activation"] = keras.saving.serialize_keras_object(activation)
    with pytest.raises(ArtifactError, match="activation"):
        model_config.validate_model_config(config)


def test_numbers_in_lists_are_bounded_over_the_whole_configuration():
    config = archived_config(lesson_model())
    for index in (1, 2, 3):  # each list short, 1,200 in all
        config["config"]["layers"][index]["config"]["smuggled"] = [0.5] * 400
    with pytest.raises(ArtifactError, match="lists"):
        model_config.validate_model_config(config)


FORGED_NAMES = [  # (where, name): a text name that Keras looks up as an object outside the allow-list (helper-85 F1)
    ("optimizer", "muon"), ("metrics", ["auc"]), ("metrics", ["f1_score"]), ("loss", {"out": "no_such_loss"}),
    ("kernel_initializer", "stft"), ("kernel_regularizer", "orthogonal_regularizer"), ("dtype", "int8_from_float32"),
    ("dtype", "float8_from_float32"), ("activation", "__import__"),
    ("metrics", {"loss": ["auc"]}),  # metrics by output, the output named as a key that names losses (helper-87 F2)
]
HONEST_NAMES = [
    ("optimizer", "sgd"), ("optimizer", "Adam"), ("optimizer", "rmsprop"), ("loss", "mse"),
    ("loss", "SparseCategoricalCrossentropy"), ("metrics", ["acc", "accuracy", "sparse_categorical_accuracy"]),
    ("metrics", ["mse"]), ("activation", "gelu"), ("kernel_initializer", "he_normal"), ("kernel_regularizer", "l2"),
    ("kernel_constraint", "non_neg"), ("dtype", "float32"), ("dtype", "mixed_float16"),
    ("loss", "crossentropy"), ("loss", "CE"), ("metrics", ["ACC", "mae", "kl_divergence", "binary_accuracy"]),
]


def named(where: str, name) -> dict:
    config = archived_config(lesson_model())
    if where in ("optimizer", "loss", "metrics"):
        config["compile_config"][where] = name
    else:
        config["config"]["layers"][2]["config"][where] = name
    return config


@pytest.mark.parametrize(("where", "name"), FORGED_NAMES)
def test_a_name_keras_would_look_up_outside_the_allow_list_is_refused(where, name):
    """As text, "muon" loaded as Muon, whose updates depend on the layers' names, which a training's key leaves
    out: two forged models differing only in a name shared a key and trained differently."""
    with pytest.raises(ArtifactError, match="among Keras's"):
        model_config.validate_model_config(named(where, name))


@pytest.mark.parametrize(("where", "name"), HONEST_NAMES)
def test_the_names_keras_s_usual_objects_go_by_are_loaded(where, name):
    model_config.validate_model_config(named(where, name))


def test_outputs_named_as_the_keys_that_name_keras_s_objects_are_layers_names():
    """A functional model's outputs by name, one named "loss": its name was looked up as a loss (helper-87 F2)."""
    import keras

    inputs = keras.Input(shape=(28, 28))
    hidden = keras.layers.Dense(30, activation="relu")(keras.layers.Flatten()(inputs))
    model = keras.Model(inputs, {"loss": keras.layers.Dense(10, activation="softmax", name="loss")(hidden)})
    model.compile(loss={"loss": "sparse_categorical_crossentropy"}, optimizer="sgd", metrics={"loss": ["accuracy"]})
    model_config.validate_model_config(archived_config(model))
