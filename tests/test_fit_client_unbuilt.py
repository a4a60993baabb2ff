"""A model with no input shape (no ``keras.Input``): plain Keras builds it on the first ``fit``, so the
kit's ``fit`` must too, or the trainer's weights have nothing to be set on in the student's process."""

from __future__ import annotations

import numpy as np
import pytest

from autograder.judge.training_checks import without_compile
from autograder.sandbox.fit_client import FitClient, LocalTransport
from autograder.trainer.records import model_signature
from autograder.trainer.service import Trainer

# Keras warns when it saves a model not yet built, as the first call sends one: a warning, not an error, in a sandbox.
pytestmark = pytest.mark.filterwarnings("ignore:You are saving a model that has not yet been built:UserWarning")


@pytest.fixture(scope="module")
def small(small_split):
    return small_split


def lesson_layers(keras):
    return [
        keras.layers.Flatten(),
        keras.layers.Dense(30, activation="relu"),
        keras.layers.Dense(10, activation="softmax"),
    ]


def compiled(model):
    model.compile(loss="sparse_categorical_crossentropy", optimizer="sgd", metrics=["accuracy"])
    return model


def unbuilt_model(seed: int = 42):
    """As a student writes it from an older tutorial: no keras.Input, no input_shape."""
    import keras

    keras.utils.set_random_seed(seed)
    model = compiled(keras.Sequential(lesson_layers(keras)))
    assert not model.built and not model.weights
    return model


def fit(client, model, arrays, **options):
    with client.installed(model):
        return model.fit(arrays["X_train"], arrays["y_train"], validation_data=(arrays["X_valid"], arrays["y_valid"]),
                         **{"epochs": 1, **options})


def same(left, right) -> bool:
    return len(left) == len(right) and all(a.shape == b.shape and np.array_equal(a, b) for a, b in zip(left, right))


def test_an_unbuilt_model_is_trained_and_holds_the_trainer_s_weights_and_history(small):
    arrays, test = small
    trainer = Trainer(arrays, test)
    model = unbuilt_model()
    history = fit(FitClient(LocalTransport(trainer), known=arrays), model, arrays, epochs=2)
    record = trainer.finish()
    assert record.calls[0].trained and record.calls[0].epochs_run == 2
    assert model.built and len(model.get_weights()) == 4
    assert same(model.get_weights(), trainer.weights) and same(model.get_weights(), trainer.model.get_weights())
    assert history.history == record.calls[0].history and model.history is history
    # What trained is the network build_model gives, as the judge compares it (same_model_as_built).
    assert record.calls[0].architecture == model_signature(without_compile(unbuilt_model()))


def test_a_second_fit_of_a_model_built_by_the_first_trains_and_holds_the_trainer_s_weights(small):
    arrays, test = small
    trainer = Trainer(arrays, test)
    client = FitClient(LocalTransport(trainer), known=arrays)
    model = unbuilt_model()
    fit(client, model, arrays, epochs=1)
    fit(client, model, arrays, epochs=2)
    record = trainer.finish()
    assert [call.trained for call in record.calls] == [True, True]
    assert same(model.get_weights(), trainer.weights)


def test_the_model_is_built_as_keras_s_own_fit_builds_it_from_x(small):
    """Plain Keras builds the network on x's shape (28×28 images: Flatten gives the first Dense 784
    inputs); the kit's fit builds the same, its batch dimension left open."""
    arrays, test = small
    plain = unbuilt_model()
    plain.fit(arrays["X_train"], arrays["y_train"], epochs=1, verbose=0)
    trainer = Trainer(arrays, test)
    model = unbuilt_model()
    fit(FitClient(LocalTransport(trainer), known=arrays), model, arrays)
    assert [w.shape for w in model.get_weights()] == [w.shape for w in plain.get_weights()]
    assert [w.shape for w in model.get_weights()] == [(784, 30), (30,), (30, 10), (10,)]
    assert tuple(model.input_shape) == (None, 28, 28) and tuple(plain.input_shape)[1:] == (28, 28)
    assert tuple(model.output_shape) == (None, 10) and tuple(plain.output_shape)[1:] == (10,)
    # It computes what the trainer's model computes, on a batch of any size.
    assert np.allclose(model.predict(test[:50], verbose=0), trainer.model.predict(test[:50], verbose=0))


def test_a_stored_training_of_an_unbuilt_model_is_replayed_into_one(small, tmp_path):
    """The trainer that stored the training built the model in fit; the one that replays it must build
    it too before it restores the weights, or the replay fails and a classmate graded second loses the
    training (helper-53: 75 and 45 for the same notebook)."""
    arrays, test = small
    first = Trainer(arrays, test, cache=tmp_path)
    fit(FitClient(LocalTransport(first), known=arrays), unbuilt_model(), arrays, epochs=2)
    second = Trainer(arrays, test, cache=tmp_path)
    model = unbuilt_model()
    history = fit(FitClient(LocalTransport(second), known=arrays), model, arrays, epochs=2)
    stored, replayed = first.finish(), second.finish()
    assert replayed.calls[0].trained and replayed.calls[0].reused and not stored.calls[0].reused
    assert replayed.calls[0].history == stored.calls[0].history == history.history
    assert np.array_equal(replayed.predictions, stored.predictions)
    assert same(model.get_weights(), first.model.get_weights())
