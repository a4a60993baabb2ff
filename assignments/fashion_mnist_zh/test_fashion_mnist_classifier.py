"""Self-check: run `pytest` in this folder to check your notebook on the public checks.

It takes a few seconds. The check that trains your model for 30 epochs is skipped unless you
run `pytest --full`. The same checks run when your work is graded, with a few hidden ones.
"""

from pathlib import Path

import pytest

from autograder.judge.evidence import run_check
from autograder.errors import AutograderError
from autograder.selfcheck import FULL_HINT, load_for_self_check, public_checks

NOTEBOOK = Path(__file__).with_name("fashion_mnist_classifier.ipynb")


@pytest.fixture(scope="module")
def evidence(request):
    try:
        return load_for_self_check(NOTEBOOK, full=request.config.getoption("--full"))
    except AutograderError as error:
        pytest.fail(str(error), pytrace=False)


@pytest.mark.parametrize("check", public_checks(), ids=lambda check: check.id)
def test_public_check(check, evidence, request):
    if check.needs_training and not request.config.getoption("--full"):
        pytest.skip(FULL_HINT)
    result = run_check(check, evidence)
    if not result.passed:
        pytest.fail(result.message, pytrace=False)
