"""The checks table: one record per check id of the contract, each with the function that decides it.

A check is data (id, points, hidden, description) plus a function taking the ``Evidence``
(``autograder.judge.evidence``) — what the submission's functions produced on the kit's inputs
(``Artifacts``) and the kit's own data — and returning a message on success or raising
``CheckFailed`` with a message that names the mistake in the student's terms. Checks never call
student code: they run in the trusted grader and judge plain data. Points come only from
``CHECKS`` below; the functions are grouped by subject in ``data_checks``, ``model_checks`` and
``training_checks``.

Each probe fed the student's function the kit's own inputs (``ReferenceData``, the kit's
reference model), so one mistake costs points where it is made and not again in every later step.
"""

from __future__ import annotations

import dataclasses

from autograder.assignment import EPOCHS
from autograder.config import Config
from autograder.errors import ConfigError
from autograder.judge.data_checks import check_normalize, check_samples_plot, check_split
from autograder.judge.evidence import Check
from autograder.judge.model_checks import (
    check_compile,
    check_model_architecture,
    check_parameter_counts,
    check_predict_labels,
)
from autograder.judge.training_checks import MIN_TEST_ACCURACY, check_test_accuracy, check_training

CHECKS: tuple[Check, ...] = (
    Check("normalize", 10, False, "images / 255 as floats in [0, 1], shape kept, input unchanged", check_normalize),
    Check("split", 10, False, "the first 5000 images are the validation set; labels stay integers", check_split),
    Check("samples_plot", 5, False, "a 4×10 grid of images titled with their class names", check_samples_plot),
    Check(
        "model_architecture",
        15,
        False,
        "Flatten → Dense(300, relu) → Dense(100, relu) → Dense(10, softmax), input 28×28",
        check_model_architecture,
    ),
    Check("parameter_counts", 10, False, "0 / 235500 / 30100 / 1010 parameters per layer", check_parameter_counts),
    Check("compile", 15, False, "sparse categorical cross-entropy, SGD, accuracy", check_compile),
    Check(
        "training",
        10,
        False,
        f"{EPOCHS} epochs with validation on the validation set",  # as checks_table writes it
        check_training,
        needs_training=True,
    ),
    Check(
        "test_accuracy",
        20,
        True,
        f"test accuracy measured by the grader ≥ {MIN_TEST_ACCURACY}",  # as checks_table writes it
        check_test_accuracy,
        needs_training=True,
    ),
    Check("predict_labels", 5, False, "integer class ids, the arg-max of the predictions", check_predict_labels),
)
CHECKS_BY_ID = {check.id: check for check in CHECKS}
MAX_SCORE = sum(check.points for check in CHECKS)


def checks_table(config: Config | None = None) -> tuple[Check, ...]:
    """``CHECKS`` with a config's points, pass mark and epochs: the one place a config changes the table.
    Without a config, or with the defaults, it is ``CHECKS`` itself."""
    if config is None:
        return CHECKS
    unknown = sorted(set(config.points) - set(CHECKS_BY_ID))
    if unknown:
        raise ConfigError(config.path, f"points.{unknown[0]}",
                          f"no check has this id; the checks are {', '.join(CHECKS_BY_ID)}")
    table = []
    for check in CHECKS:
        check = dataclasses.replace(check, points=config.points.get(check.id, check.points))
        if check.id == "test_accuracy":
            check = dataclasses.replace(check, description=f"test accuracy measured by the grader ≥ {config.pass_mark}")
        if check.id == "training":
            description = f"{config.epochs} epochs with validation on the validation set"
            check = dataclasses.replace(check, description=description)
        table.append(check)
    return tuple(table)


def max_score(table: tuple[Check, ...] = CHECKS) -> int:
    return sum(check.points for check in table)
