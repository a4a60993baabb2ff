"""The self-check's quick training: a few epochs on a few images, in seconds, before the full one.

The ``training`` check trains for the assignment's 30 epochs, about a minute, so a self-check that
only ever asks ``train_model`` for 30 epochs cannot tell ``epochs=epochs`` from a ``train_model`` that
writes ``epochs=30`` itself. This asks for ``QUICK_EPOCHS`` epochs on ``QUICK_TRAIN`` training images
validated on ``QUICK_VALID`` others, every ``fit`` going to the kit's trainer as when grading
(``autograder.sandbox.fit_client``), and judges from the trainer's record that the model trained for
the epochs asked and was validated on the validation set it was given.

Used by ``autograder check``, ``pytest`` in the released folder and the notebook's check cells.
"""

from __future__ import annotations

import contextlib
import io

QUICK_EPOCHS = 2
QUICK_TRAIN, QUICK_VALID = 256, 64


def what() -> str:
    """The quick training, as a message says which training it speaks of."""
    from autograder.i18n import _

    return _("quick check, {epochs} epochs on {images} images").format(epochs=QUICK_EPOCHS, images=QUICK_TRAIN)


def quick_arrays(inputs) -> dict:
    """The quick training's arrays, named as the kit names the arrays it gives ``train_model``."""
    X, y = inputs.train_scaled, inputs.train_labels
    end = QUICK_VALID + QUICK_TRAIN
    return {"X_train": X[QUICK_VALID:end], "y_train": y[QUICK_VALID:end], "X_valid": X[:QUICK_VALID],
            "y_valid": y[:QUICK_VALID]}


def judge_quick(record, returned) -> None:
    """Raise ``CheckFailed`` saying what the quick training's record shows was not honoured, or that
    ``train_model`` returned (``returned``: its type's name, or None for a History of its fit calls)
    something else than the History."""
    from autograder.errors import CheckFailed
    from autograder.i18n import _
    from autograder.judge.evidence import Evidence
    from autograder.judge.training_checks import not_the_history, trained_chain
    from autograder.sandbox.artifacts import Artifacts

    if returned is not None:
        raise CheckFailed(not_the_history(returned))
    chain = trained_chain(Evidence(Artifacts(), None, record))
    epochs = sum(call.epochs_run for call in chain)
    if epochs != QUICK_EPOCHS:
        raise CheckFailed(_(
            "`train_model` was asked for epochs={asked} and the model trained for {epochs}: pass "
            "epochs=epochs to model.fit instead of a number of your own"
        ).format(asked=QUICK_EPOCHS, epochs=epochs))
    if any(call.validation_split for call in chain):
        raise CheckFailed(_(
            "validated on a slice of the training data (validation_split): pass validation_data=(X_valid, y_valid)"
        ))
    if not all(call.validation for call in chain):
        raise CheckFailed(_("there is no validation data: pass validation_data=(X_valid, y_valid) to model.fit"))
    if any(call.validation[:2] != ["X_valid", "y_valid"] for call in chain):
        raise CheckFailed(_(
            "the model was not validated on the validation set `train_model` was given: pass "
            "validation_data=(X_valid, y_valid)"
        ))


def quick_training(functions: dict, inputs, cell_errors=()):
    """The ``training`` check's failed ``CheckResult`` when the quick training shows a mistake, else None.

    ``functions``: the notebook's functions by name (None for one it lacks); ``inputs``:
    ``autograder.data.inputs.ProbeInputs``."""
    from autograder.errors import CheckFailed, StudentError
    from autograder.i18n import _
    from autograder.judge.checks import CHECKS_BY_ID
    from autograder.judge.evidence import CheckResult
    from autograder.sandbox.fit_client import FitClient, LocalTransport
    from autograder.sandbox.probe import Prober, build_compile_train
    from autograder.trainer.service import Trainer

    check = CHECKS_BY_ID["training"]
    arrays = quick_arrays(inputs)
    trainer = Trainer(arrays, fast=False)  # Keras's own loop: nothing to compile for a few batches
    try:
        with contextlib.redirect_stdout(io.StringIO()):  # the student's own progress bars, if any
            _model, history, from_fit = build_compile_train(Prober(functions, cell_errors), *arrays.values(),
                                                       client=FitClient(LocalTransport(trainer)), epochs=QUICK_EPOCHS)
        judge_quick(trainer.finish(), None if from_fit else type(history).__name__)
    except StudentError as error:
        message = _("training failed ({what}): {error}").format(what=what(), error=error)
        return CheckResult(check.id, 0, check.points, False, message, not_done=error.not_done)
    except CheckFailed as failure:
        return CheckResult(check.id, 0, check.points, False, f"{failure} ({what()})")
    return None
