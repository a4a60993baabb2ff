"""Self-check: run `pytest` in this folder to check your notebook on the public checks.

It takes a few seconds: the training check trains your model for 2 epochs on a few images, to see
that `train_model` uses its `epochs` and validation data. `pytest --full` also trains it for 30
epochs, about a minute. The same checks run when your work is graded, with a few hidden ones.
"""

from pathlib import Path

import pytest

from autograder.errors import AutograderError
from autograder.selfcheck import public_checks, self_check

NOTEBOOK = Path(__file__).with_name("fashion_mnist_classifier.ipynb")


@pytest.fixture(scope="module")
def results(request):
    try:
        report = self_check(NOTEBOOK, full=request.config.getoption("--full"))
    except AutograderError as error:
        pytest.fail(str(error), pytrace=False)
    return {result.id: result for result in report.results}


@pytest.mark.parametrize("check", public_checks(), ids=lambda check: check.id)
def test_public_check(check, results):
    result = results[check.id]
    if result.skipped:
        pytest.skip(result.message)
    if not result.passed:
        pytest.fail(result.message, pytrace=False)
