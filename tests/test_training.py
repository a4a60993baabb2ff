"""The fast training path: the same computation as Keras defaults, and the lesson's accuracy."""

from __future__ import annotations

import numpy as np
import pytest

from autograder.training import FAST_STEPS_PER_EXECUTION, use_fast_execution


def small_run(functions, dataset, fast: bool):
    import keras

    (train_images, train_labels), _ = dataset
    X, y = functions["normalize"](train_images[:3200]), train_labels[:3200]
    keras.utils.set_random_seed(7)
    model = functions["compile_model"](functions["build_model"]())
    if fast:
        use_fast_execution(model)
    history = model.fit(X[:2560], y[:2560], epochs=2, validation_data=(X[2560:], y[2560:]), verbose=0)
    return model, history.history


def test_the_fast_path_changes_execution_only(reference_functions, dataset):
    default_model, default_history = small_run(reference_functions, dataset, fast=False)
    fast_model, fast_history = small_run(reference_functions, dataset, fast=True)

    assert fast_model.steps_per_execution == FAST_STEPS_PER_EXECUTION and fast_model.jit_compile
    # What the student compiled with is untouched: the same optimizer, loss and metrics.
    fast_config, default_config = fast_model.get_compile_config(), default_model.get_compile_config()
    for config in (fast_config, default_config):
        config["optimizer"]["config"].pop("name")  # Keras numbers each new optimizer: sgd, sgd_1
    assert fast_config == default_config
    assert type(fast_model.optimizer).__name__ == "SGD"
    # Same batches in the same order, same updates: the numbers agree up to float rounding
    # (XLA fuses operations in another order), which can flip an image or two near a class boundary.
    for key in ("loss", "val_loss"):
        assert np.allclose(fast_history[key], default_history[key], rtol=1e-3), key
    for key in ("accuracy", "val_accuracy"):
        assert np.allclose(fast_history[key], default_history[key], atol=0.01), key
    for fast_w, default_w in zip(fast_model.get_weights(), default_model.get_weights()):
        assert np.abs(fast_w - default_w).max() < 1e-3


@pytest.mark.slow
def test_the_reference_solution_reaches_the_lesson_s_accuracy_in_30_epochs(tmp_path, real_data_dir):
    from autograder.demo import run_demo

    plot = tmp_path / "curves.png"
    run = run_demo(data_dir=real_data_dir, plot_path=plot)
    assert run.epochs == 30
    assert set(run.history_dict) == {"loss", "accuracy", "val_loss", "val_accuracy"}
    assert run.test_accuracy >= 0.86
    assert plot.read_bytes().startswith(b"\x89PNG")
