"""The training checks: ``training`` and ``test_accuracy``, judged on the trainer's record.

The record (``autograder.trainer.records.TrainingRecord``) holds what the kit's trainer itself did
with the fit calls ``train_model`` described, and the classes its final model gave the test
images: facts, never claims of the student's process.
"""

from __future__ import annotations

import functools

import numpy as np

from autograder.assignment import BATCH_SIZE
from autograder.config import DEFAULT_PASS_MARK
from autograder.errors import CheckFailed, NotDone
from autograder.i18n import _, translated
from autograder.judge.evidence import Evidence
from autograder.judge.model_checks import accuracy_keys
from autograder.sandbox.probe import epochs_probe_model, short_call_epochs
from autograder.trainer.records import compile_signature, model_signature

MIN_TEST_ACCURACY = DEFAULT_PASS_MARK  # the default; the pass mark in effect comes with the Evidence


@functools.cache
def probe_model_signature():
    """What the kit's small model of the short call is, as the trainer records a model's architecture."""
    return model_signature(without_compile(epochs_probe_model()))


def split_calls(ev: Evidence) -> tuple[list, list]:
    """The trainer's records of the short call (``probe_epochs``: before the training graded) and of
    the training graded. The child says how many calls the short one made; that is a claim (code in
    that process can rewrite it), so the short call's records are at most those, and only as far as
    the trainer saw the kit's small model (or refused a call before it could see any)."""
    calls = list(ev.training.calls) if ev.training is not None else []
    claimed = (ev.artifacts.values.get("training") or {}).get("epochs_probe_calls")
    n = claimed if type(claimed) is int and 0 <= claimed <= len(calls) else 0
    short = 0
    while short < n and (
        calls[short].architecture == probe_model_signature()
        or (not calls[short].trained and calls[short].architecture is None)
    ):
        short += 1
    return calls[:short], calls[short:]


def final_chain(calls: list) -> list:
    """The calls that made the last model: the last call and those it continues."""
    chain: list = []
    for call in reversed(calls):
        chain.insert(0, call)
        if not call.continues:
            break
    return chain


def merged_history(chain: list) -> dict[str, list[float]]:
    merged: dict[str, list[float]] = {}
    for call in chain:
        for name, values in call.history.items():
            merged.setdefault(name, []).extend(values)
    return merged


def trained_chain(ev: Evidence) -> list:
    """The trainer's record of the fit calls that made the final model; fails with what went wrong."""
    record = ev.training
    if record is None:
        raise CheckFailed(_("the grader received no record of your training"))
    calls = split_calls(ev)[1]
    failed = next((call for call in calls if not call.trained), None)
    if failed is not None:
        raise CheckFailed(_("training failed: {reason}").format(reason=failed.reason()))
    if record.error:
        raise CheckFailed(_("training failed: {reason}").format(reason=translated(record.error, record.error_fields)))
    if not calls:
        failure = ev.artifacts.errors.get("training")
        if isinstance(failure, str):  # before any fit: `compile_model` raised, `train_model` is missing, ...
            raise CheckFailed(failure[:1000])
        raise CheckFailed(_("`train_model` never called model.fit on the model it was given"))
    chain = final_chain(calls)
    if chain[0].continues:  # from the weights the short call left: epochs the record of the training never counts
        raise CheckFailed(_(
            "the model graded went on from the weights of an earlier call of `train_model`: train the model it is "
            "given from the weights `build_model` gave it"
        ))
    return chain


def same_model_as_built(ev: Evidence, chain: list) -> None:
    """The model the trainer trained is the one ``build_model`` built, compiled as ``compile_model`` compiles."""
    built, compiled = ev.artifacts.models.get("built"), ev.artifacts.models.get("compiled")
    for probe, model, function in (("build_model", "built", "build_model"), ("compile", "compiled", "compile_model")):
        if model not in ev.artifacts.models and {probe, f"model:{model}"} & set(ev.artifacts.errors):
            raise CheckFailed(_(  # the one comparison that proves the training is of the model checked (helper-73)
                "the model trained cannot be shown to be the one `{function}` gives, as `{function}` failed when the "
                "grader called it on its own: it must give the same model each time"
            ).format(function=function))
    if built is not None:
        config = without_compile(built)
        if model_signature(config) != chain[0].architecture:
            raise CheckFailed(_(
                "the model trained is not the one `build_model` builds: `train_model` must train the model it is "
                "given, not build another"
            ))
    if compiled is not None and compile_signature(compiled.get_compile_config()) != chain[0].compile:
        raise CheckFailed(_(
            "the model was trained with other compile settings than `compile_model` gives: do not compile the "
            "model again in `train_model`"
        ))


def without_compile(model) -> dict:
    import keras

    config = keras.saving.serialize_keras_object(model)
    config.pop("compile_config", None)
    return config


def compiled_config(ev: Evidence) -> dict | None:
    """The compile settings ``compile_model`` gives, which the training check also requires of the training."""
    compiled = ev.artifacts.models.get("compiled")
    try:
        return compiled.get_compile_config() if compiled is not None else None
    except Exception:
        return None


def validation_problems(ev: Evidence, chain: list, history: dict) -> tuple[bool, list[str]]:
    """Whether the training graded validated on the whole validation set after every epoch, and what
    is wrong with its validation or its history."""
    validated = [call for call in chain if call.validation]
    # Keras reads validation_split only where no validation_data is given.
    if any(call.validation_split and not call.validation for call in chain):
        return False, [_(
            "validated on a slice of the training data (validation_split): pass validation_data=(X_valid, y_valid)"
        )]
    if not any(key.startswith("val_") for key in history):
        return False, [_("there is no validation data: pass validation_data=(X_valid, y_valid) to model.fit")]
    if any(call.validation[:2] != ["X_valid", "y_valid"] for call in validated):
        return False, [_("the model was not validated on the validation set: pass validation_data=(X_valid, y_valid)")]
    if any(len(call.validation) != 2 or call.validation_steps is not None or call.validation_freq != 1
           for call in validated):
        return False, [_(
            "the model was not validated on the whole validation set after every epoch: pass "
            "validation_data=(X_valid, y_valid), without sample weights, validation_steps or validation_freq"
        )]
    if not accuracy_keys(compiled_config(ev)) & set(history) or not {"loss", "val_loss"} <= set(history):
        return True, [_("the history records {keys}; expected loss, accuracy, val_loss and val_accuracy").format(
            keys=sorted(history))]
    return True, []


def not_the_history(returned: object) -> str:
    """What to say when ``train_model`` returned something else than a History its ``fit`` calls returned."""
    return _("`train_model` returned {returned}: return the History object that model.fit returns").format(
        returned=returned)


def check_training(ev: Evidence) -> str:
    ev.produced("training")
    chain = trained_chain(ev)
    record = ev.artifacts.values.get("training")
    if not isinstance(record, dict):
        raise CheckFailed(_("the grader received no record of your training"))
    problems = []
    if not record.get("returned_the_history"):
        problems.append(not_the_history(record.get("returned")))
    history = merged_history(chain)
    epochs = sum(call.epochs_run for call in chain)
    validated, validation = validation_problems(ev, chain, history)
    problems += validation
    if epochs != ev.epochs:
        problems.append(_(
            "the model trained for {epochs} epochs; the assignment asks for {wanted}: pass epochs=epochs to model.fit"
        ).format(epochs=epochs, wanted=ev.epochs))
    trained_on_the_arguments = not any(call.x != "X_train" or call.y != "y_train" for call in chain)
    if not trained_on_the_arguments:
        problems.append(_(
            "the model was not trained on the training set it was given: model.fit(X_train, y_train, ...)"
        ))
    if any(call.weighted for call in chain):
        problems.append(_("the training weighted its samples or classes: leave out sample_weight and class_weight"))
    if any(call.steps_per_epoch is not None or call.batch_size not in (None, BATCH_SIZE) for call in chain):
        problems.append(_(
            "each epoch must go through the training set in mini-batches of {batch_size}: leave batch_size and "
            "steps_per_epoch at Keras's defaults"
        ).format(batch_size=BATCH_SIZE))
    problems += arguments_problems(ev, record, validated=validated, trained=trained_on_the_arguments)
    try:
        same_model_as_built(ev, chain)
    except CheckFailed as failure:
        problems.append(str(failure))
    if problems:
        raise CheckFailed("; ".join(problems))
    return _(
        "{epochs} epochs with loss, accuracy, val_loss, val_accuracy, validated on the validation set; "
        "called with epochs={probe_epochs} and other arrays, it used them"
    ).format(epochs=epochs, probe_epochs=short_call_epochs(ev.epochs))


def arguments_problems(ev: Evidence, record: dict, *, validated: bool, trained: bool) -> list[str]:
    """What the short call (``probe_epochs``: a few epochs, never the training graded's, the validation
    set to train on and the training set to validate on) shows: that ``train_model`` passes its epochs
    and arrays on to model.fit. A mistake the training graded already shows is not named twice."""
    probe_epochs = short_call_epochs(ev.epochs)
    error = record.get("epochs_probe_error")
    if isinstance(error, str):
        return [_("called with epochs={probe_epochs} and other arrays, `train_model` failed: {error}").format(
            probe_epochs=probe_epochs, error=error[:500])]
    short = split_calls(ev)[0]
    if not short:
        return [_("called with epochs={probe_epochs} and other arrays, `train_model` never called model.fit on the "
                  "model it was given").format(probe_epochs=probe_epochs)]
    failed = next((call for call in short if not call.trained), None)
    if failed is not None:
        return [_("called with epochs={probe_epochs} and other arrays, the training failed: {reason}").format(
            probe_epochs=probe_epochs, reason=failed.reason())]
    chain = final_chain(short)
    problems = []
    epochs = sum(call.epochs_run for call in chain)
    if epochs != probe_epochs:
        problems.append(_(
            "`train_model` ignores its epochs argument: called with epochs={probe_epochs} and other arrays, it "
            "trained for {epochs} epochs; pass epochs=epochs to model.fit"
        ).format(probe_epochs=probe_epochs, epochs=epochs))
    if trained and any(call.x != "X_valid" or call.y != "y_valid" for call in chain):
        problems.append(_(
            "`train_model` does not train on the arrays it is given: called with epochs={probe_epochs} and other "
            "arrays, it trained on others; pass model.fit(X_train, y_train, ...), its own arguments"
        ).format(probe_epochs=probe_epochs))
    if validated and any((call.validation or [])[:2] != ["X_train", "y_train"] for call in chain):
        problems.append(_(
            "`train_model` does not validate on the validation data it is given: called with epochs={probe_epochs} "
            "and other arrays, it validated on others; pass validation_data=(X_valid, y_valid), its own arguments"
        ).format(probe_epochs=probe_epochs))
    return problems


def check_test_accuracy(ev: Evidence) -> str:
    if "training" in ev.artifacts.not_done:
        raise NotDone(ev.artifacts.errors["training"])
    try:
        chain = trained_chain(ev)
        same_model_as_built(ev, chain)
    except CheckFailed as failure:
        raise CheckFailed(_("no model to measure: {reason}").format(reason=failure)) from None
    predictions = ev.training.predictions
    if predictions is None or predictions.shape != ev.data.test_labels.shape:
        raise CheckFailed(_("no model to measure: the trained model gives no class for each test image"))
    accuracy = float(np.mean(predictions == ev.data.test_labels))
    if accuracy < ev.pass_mark:
        raise CheckFailed(_(
            "test accuracy {accuracy}, below the minimum {minimum}: check the model, the loss, the "
            "optimizer and the number of epochs"
        ).format(accuracy=f"{accuracy:.4f}", minimum=ev.pass_mark))
    return _("test accuracy {accuracy} (minimum {minimum}), measured by the grader").format(
        accuracy=f"{accuracy:.4f}", minimum=ev.pass_mark)
