"""The architecture checks judge the network a model computes, however the Python code listed its layers."""

from __future__ import annotations

import pytest

from autograder.errors import CheckFailed
from autograder.judge.network import network, parameters


def lesson_s_network(style: str):
    import keras

    layers = keras.layers
    if style in ("sequential", "sequential-with-reshape"):
        flatten = layers.Flatten() if style == "sequential" else layers.Reshape((-1,))
        return keras.Sequential([
            keras.Input(shape=(28, 28)), flatten, layers.Dense(300, activation="relu"),
            layers.Dense(100, activation="relu"), layers.Dense(10, activation="softmax"),
        ])
    inputs = keras.Input(shape=(28, 28))
    x = layers.Dense(300)(layers.Flatten()(inputs))
    x = layers.Activation("relu")(x)
    x = layers.Dense(100, activation=keras.activations.relu)(x)
    outputs = layers.Softmax()(layers.Dense(10)(x))
    return keras.Model(inputs, outputs)


@pytest.mark.parametrize("style", ["sequential", "sequential-with-reshape", "functional-with-activation-layers"])
def test_the_same_network_built_two_ways_is_the_same_steps(style):
    steps = network(lesson_s_network(style))
    lesson_s = ["Flatten", "Dense(300, relu)", "Dense(100, relu)", "Dense(10, softmax)"]
    assert [step.describe() for step in steps] == lesson_s
    assert [parameters(step) for step in steps] == [0, 235500, 30100, 1010]


def test_a_network_that_branches_is_not_the_lesson_s_chain():
    import keras

    inputs = keras.Input(shape=(28, 28))
    flat = keras.layers.Flatten()(inputs)
    left, right = keras.layers.Dense(300, activation="relu")(flat), keras.layers.Dense(300, activation="relu")(flat)
    hidden = keras.layers.Dense(100, activation="relu")(keras.layers.Add()([left, right]))
    model = keras.Model(inputs, keras.layers.Dense(10, activation="softmax")(hidden))
    with pytest.raises(CheckFailed, match="not one chain of layers"):
        network(model)
    side = keras.layers.Dense(5)(flat)  # a layer off the way from the input to the output
    model = keras.Model(inputs, [keras.layers.Dense(10, activation="softmax")(keras.layers.Dense(100)(flat)), side])
    with pytest.raises(CheckFailed):
        network(model)


def test_an_activation_layer_after_a_dense_layer_that_has_one_is_a_layer_of_its_own():
    import keras

    model = keras.Sequential([
        keras.Input(shape=(28, 28)), keras.layers.Flatten(), keras.layers.Dense(300, activation="relu"),
        keras.layers.Activation("softmax"),
    ])
    assert [step.describe() for step in network(model)] == ["Flatten", "Dense(300, relu)", "Activation(softmax)"]


def test_a_class_id_at_a_near_tie_is_the_arg_max_whichever_way_rounding_falls():
    import numpy as np

    from autograder.judge.model_checks import disagreements

    probabilities = np.array([
        [0.1, 0.45, 0.45, 0.0],  # a tie: 1 and 2 are both the arg-max
        [0.2, 0.3, 0.3 + 3e-7, 0.2],  # rounding in another process's sums could give 1 or 2
        [0.7, 0.1, 0.1, 0.1],
    ], dtype=np.float32)
    assert disagreements(np.array([1, 1, 0]), probabilities) == 0
    assert disagreements(np.array([2, 2, 0]), probabilities) == 0
    assert disagreements(np.array([0, 1, 0]), probabilities) == 1  # clearly not the arg-max
    assert disagreements(np.array([1, 1, 9]), probabilities) == 1  # no such class
    assert disagreements(np.array([1, 1, -1]), probabilities) == 1
