"""The training checks: ``training`` and ``test_accuracy``, judged on the trainer's record.

The record (``autograder.trainer.records.TrainingRecord``) holds what the kit's trainer itself did
with the fit calls ``train_model`` described, and the classes its final model gave the test
images: facts, never claims of the student's process.
"""

from __future__ import annotations

import numpy as np

from autograder.assignment import BATCH_SIZE, EPOCHS
from autograder.config import DEFAULT_PASS_MARK
from autograder.errors import CheckFailed, NotDone
from autograder.judge.evidence import Evidence
from autograder.judge.model_checks import ACCURACY_NAMES
from autograder.trainer.records import compile_signature, model_signature

MIN_TEST_ACCURACY = DEFAULT_PASS_MARK  # the default; the pass mark in effect comes with the Evidence


def trained_chain(ev: Evidence) -> list:
    """The trainer's record of the fit calls that made the final model; fails with what went wrong."""
    record = ev.training
    if record is None:
        raise CheckFailed("the grader received no record of your training")
    failed = next((call for call in record.calls if not call.trained), None)
    if failed is not None:
        raise CheckFailed(f"training failed: {failed.message}")
    if record.error:
        raise CheckFailed(f"training failed: {record.error}")
    if not record.calls:
        raise CheckFailed("`train_model` never called model.fit on the model it was given")
    return record.final_chain()


def same_model_as_built(ev: Evidence, chain: list) -> None:
    """The model the trainer trained is the one ``build_model`` built, compiled as ``compile_model`` compiles."""
    built, compiled = ev.artifacts.models.get("built"), ev.artifacts.models.get("compiled")
    if built is not None:
        config = without_compile(built)
        if model_signature(config) != chain[0].architecture:
            raise CheckFailed(
                "the model trained is not the one `build_model` builds: `train_model` must train the model it is "
                "given, not build another"
            )
    if compiled is not None and compile_signature(compiled.get_compile_config()) != chain[0].compile:
        raise CheckFailed(
            "the model was trained with other compile settings than `compile_model` gives: do not compile the "
            "model again in `train_model`"
        )


def without_compile(model) -> dict:
    import keras

    config = keras.saving.serialize_keras_object(model)
    config.pop("compile_config", None)
    return config


def check_training(ev: Evidence) -> str:
    ev.produced("training")
    chain = trained_chain(ev)
    record = ev.artifacts.values.get("training")
    if not isinstance(record, dict):
        raise CheckFailed("the grader received no record of your training")
    if not record.get("returned_the_history"):
        raise CheckFailed(
            f"`train_model` returned {record.get('returned')}: return the History object that model.fit returns"
        )
    history = ev.training.history()
    epochs = sum(call.epochs_run for call in chain)
    if any(call.validation_split for call in chain):
        raise CheckFailed(
            "validated on a slice of the training data (validation_split): pass validation_data=(X_valid, y_valid)"
        )
    if not any(key.startswith("val_") for key in history):
        raise CheckFailed("there is no validation data: pass validation_data=(X_valid, y_valid) to model.fit")
    missing = [key for key in ("loss", "val_loss") if key not in history]
    if not ACCURACY_NAMES & set(history) or missing:
        raise CheckFailed(f"the history records {sorted(history)}; expected loss, accuracy, val_loss and val_accuracy")
    if epochs != EPOCHS:
        raise CheckFailed(
            f"the model trained for {epochs} epochs; the assignment asks for {EPOCHS}: pass epochs=epochs to model.fit"
        )
    if any(call.validation[:2] != ["X_valid", "y_valid"] for call in chain if call.validation):
        raise CheckFailed("the model was not validated on the validation set: pass validation_data=(X_valid, y_valid)")
    if any(call.x != "X_train" or call.y != "y_train" for call in chain):
        raise CheckFailed(
            "the model was not trained on the training set it was given: model.fit(X_train, y_train, ...)"
        )
    if any(call.weighted for call in chain):
        raise CheckFailed("the training weighted its samples or classes: leave out sample_weight and class_weight")
    if any(call.steps_per_epoch is not None or call.batch_size not in (None, BATCH_SIZE) for call in chain):
        raise CheckFailed(
            f"each epoch must go through the training set in mini-batches of {BATCH_SIZE}: leave batch_size and "
            "steps_per_epoch at Keras's defaults"
        )
    same_model_as_built(ev, chain)
    return f"{epochs} epochs with loss, accuracy, val_loss, val_accuracy, validated on the validation set"


def check_test_accuracy(ev: Evidence) -> str:
    if "training" in ev.artifacts.not_done:
        raise NotDone(ev.artifacts.errors["training"])
    try:
        chain = trained_chain(ev)
        same_model_as_built(ev, chain)
    except CheckFailed as failure:
        raise CheckFailed(f"no model to measure: {failure}") from None
    predictions = ev.training.predictions
    if predictions is None or predictions.shape != ev.data.test_labels.shape:
        raise CheckFailed("no model to measure: the trained model gives no class for each test image")
    accuracy = float(np.mean(predictions == ev.data.test_labels))
    if accuracy < ev.pass_mark:
        raise CheckFailed(
            f"test accuracy {accuracy:.4f}, below the minimum {ev.pass_mark}: check the model, the loss, the "
            "optimizer and the number of epochs"
        )
    return f"test accuracy {accuracy:.4f} (minimum {ev.pass_mark}), measured by the grader"
