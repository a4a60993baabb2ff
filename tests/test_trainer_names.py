"""Names TensorFlow cannot train under: Keras takes any name for a model or a layer, but its ``fit`` on
TensorFlow fails on some (a layer ``展平``, a model ``Fashion MNIST classifier``). The kit's trainer
refuses them as the student's notebook does, whether or not a classmate's identical training, whose key
leaves names aside, is stored."""

from __future__ import annotations

import pytest

from autograder.errors import TrainingNotReproducible
from autograder.sandbox.fit_client import FitClient, LocalTransport
from autograder.trainer.service import Trainer


def named_model(model=None, flatten=None, hidden=None, optimizer=None, loss=None, metric=None, inputs=None,
                schedule=None):
    import keras

    def name(value):
        return {"name": value} if value is not None else {}

    keras.utils.set_random_seed(42)
    network = keras.Sequential([
        keras.Input(shape=(28, 28), **name(inputs)),
        keras.layers.Flatten(**name(flatten)),
        keras.layers.Dense(30, activation="relu", **name(hidden)),
        keras.layers.Dense(10, activation="softmax"),
    ], **name(model))
    network.compile(
        loss=keras.losses.SparseCategoricalCrossentropy(**name(loss)),
        optimizer=keras.optimizers.SGD(**name(optimizer), **(
            {} if schedule is None else
            {"learning_rate": keras.optimizers.schedules.ExponentialDecay(0.01, 100, 0.9, name=schedule)})),
        metrics=[keras.metrics.SparseCategoricalAccuracy(**name(metric))],
    )
    return network


def fit(trainer, arrays, model):
    with FitClient(LocalTransport(trainer), known=arrays).installed(model):
        return model.fit(arrays["X_train"], arrays["y_train"], epochs=1,
                         validation_data=(arrays["X_valid"], arrays["y_valid"]))


REFUSED = [
    ({"flatten": "展平"}, "展平"),
    ({"hidden": "hidden 1"}, "hidden 1"),
    ({"model": "Fashion MNIST classifier"}, "Fashion MNIST classifier"),
    ({"model": "时尚分类器"}, "时尚分类器"),
    ({"model": "_model"}, "_model"),
    ({"optimizer": "优化器"}, "优化器"),
    ({"loss": "损失"}, "损失"),
    ({"flatten": "flatten\\1"}, "flatten"),  # a scope takes a backslash, a node's name does not (helper-56)
    ({"optimizer": "sgd\\1"}, "sgd"),
    ({"model": "", "flatten": "_flatten"}, "_flatten"),  # under a model with no name, a layer's scope is at the root
    ({"schedule": "衰减"}, "衰减"),  # a learning-rate schedule's scope, inside the optimizer's (helper-55)
    ({"schedule": "decay 1"}, "decay 1"),
    ({"optimizer": "", "schedule": "_decay"}, "_decay"),  # an optimizer with no name leaves it at the root (helper-58)
]


@pytest.mark.parametrize("names, refused", REFUSED, ids=[refused for _, refused in REFUSED])
def test_a_name_tensorflow_refuses_is_refused_as_keras_fit_refuses_it(small_split, names, refused):
    import keras

    arrays, test = small_split
    model = named_model(**names)
    with pytest.raises(ValueError, match="valid"):  # what the student's notebook shows
        model.fit(arrays["X_train"], arrays["y_train"], epochs=1, verbose=0)
    trainer = Trainer(arrays, test)
    with pytest.raises(TrainingNotReproducible, match=refused):
        fit(trainer, arrays, named_model(**names))
    record = trainer.finish()
    assert not record.calls[0].trained and record.predictions is None
    keras.backend.clear_session()


@pytest.mark.parametrize("names, refused", REFUSED, ids=[refused for _, refused in REFUSED])
def test_a_stored_training_under_other_names_does_not_stand_for_a_refused_one(small_split, tmp_path, names, refused):
    """The key leaves names aside: a classmate's training of the same network is stored first."""
    arrays, test = small_split
    classmate = Trainer(arrays, test, cache=tmp_path)
    fit(classmate, arrays, named_model())
    assert classmate.finish().calls[0].trained
    trainer = Trainer(arrays, test, cache=tmp_path)
    with pytest.raises(TrainingNotReproducible, match="TensorFlow cannot train a model with the name"):
        fit(trainer, arrays, named_model(**names))
    record = trainer.finish()
    assert not record.calls[0].trained and not record.calls[0].reused


@pytest.mark.parametrize("names", [
    {"metric": "准确率"}, {"metric": "acc 1"}, {"hidden": "_hidden"}, {"hidden": "a-b.c"}, {"model": "model.v2"},
    {"flatten": "flatten_1", "hidden": "hidden_1", "model": "fashion_mnist", "optimizer": "sgd_1", "loss": "loss"},
    {"inputs": "图像"}, {"inputs": "a b"},  # fit never calls an input layer (helper-55)
    {"model": ""}, {"optimizer": ""},  # an empty name opens no scope
    {"schedule": "_decay"}, {"schedule": "-decay"},  # not at the root
], ids=str)
def test_names_keras_fit_takes_are_trained(small_split, names):
    arrays, test = small_split
    model = named_model(**names)
    model.fit(arrays["X_train"], arrays["y_train"], epochs=1, verbose=0)  # plain Keras takes them
    trainer = Trainer(arrays, test)
    fit(trainer, arrays, named_model(**names))
    assert trainer.finish().calls[0].trained


def test_a_replay_fails_where_training_afresh_fails_whatever_the_name_rules_miss(small_split, tmp_path, monkeypatch):
    """The trainer runs a replayed model once, so that a name TensorFlow's graphs refuse fails the call
    as training it would, not only the test set's predictions afterwards (80 with reuse, 70 without)."""
    from autograder.trainer import records

    arrays, test = small_split
    classmate = Trainer(arrays, test, cache=tmp_path)
    fit(classmate, arrays, named_model())
    assert classmate.finish().calls[0].trained
    monkeypatch.setattr(records, "refuse_names_tensorflow_refuses", lambda *names: None)  # rules that miss one
    trainer = Trainer(arrays, test, cache=tmp_path)
    with pytest.raises(TrainingNotReproducible, match="展平"):
        fit(trainer, arrays, named_model(flatten="展平"))
    assert not trainer.finish().calls[0].trained


def test_a_layer_under_an_unnamed_model_inside_a_named_one_is_refused_as_at_the_root(small_split):
    """An empty name takes TensorFlow's scope back to the root, at any depth (helper-57)."""
    import keras

    def nested():
        keras.utils.set_random_seed(42)
        inner = keras.Sequential([keras.layers.Dense(30, activation="relu", name="_hidden")], name="")
        model = keras.Sequential([keras.Input(shape=(28, 28)), keras.layers.Flatten(), inner,
                                  keras.layers.Dense(10, activation="softmax")], name="outer")
        model.compile(loss="sparse_categorical_crossentropy", optimizer="sgd", metrics=["accuracy"])
        return model

    arrays, test = small_split
    with pytest.raises(ValueError, match="valid"):
        nested().fit(arrays["X_train"], arrays["y_train"], epochs=1, verbose=0)
    with pytest.raises(TrainingNotReproducible, match="TensorFlow cannot train a model with the name '_hidden'"):
        fit(Trainer(arrays, test), arrays, nested())
