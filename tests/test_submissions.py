"""The test submissions under tests/submissions: each gets the score and failing checks written beside it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from autograder.batch.local import grade_notebooks
from autograder.batch.steps import collect_in_process, lint_notes
from autograder.errors import NotebookError
from autograder.judge.checks import CHECKS
from autograder.judge.evidence import Evidence, run_check

SUBMISSIONS = Path(__file__).parent / "submissions"
NAMES = sorted(path.stem for path in SUBMISSIONS.glob("*.ipynb"))


def expected(name: str) -> dict:
    return json.loads((SUBMISSIONS / f"{name}.expected.json").read_text())


def phrases(phrase: str | list[str]) -> list[str]:
    """What a failing check's message must contain: one phrase, or each mistake it must name."""
    return [phrase] if isinstance(phrase, str) else phrase


@pytest.fixture(scope="module")
def reference_data(real_data_dir):
    from autograder.data.inputs import ProbeInputs
    from autograder.data.reference import ReferenceData

    data = ReferenceData.load(real_data_dir)
    return data, ProbeInputs.from_reference(data)


@pytest.mark.parametrize("name", NAMES)
def test_checks_that_need_no_training_fail_exactly_where_expected(name, reference_data):

    data, inputs = reference_data
    want = expected(name)
    try:
        artifacts, _ = collect_in_process(SUBMISSIONS / f"{name}.ipynb", inputs, train=False)
    except NotebookError as error:
        assert want["error"] and want["error"] in str(error)
        return
    assert want["error"] is None
    evidence = Evidence(artifacts, data)
    results = {check.id: run_check(check, evidence) for check in CHECKS if not check.needs_training}
    failing = {check_id for check_id, result in results.items() if not result.passed}
    assert failing == set(want["failing"]) & set(results)
    for check_id in failing:
        for phrase in phrases(want["failing"][check_id]):
            assert phrase in results[check_id].message, results[check_id].message
    notes = lint_notes(SUBMISSIONS / f"{name}.ipynb")
    assert bool(notes) == bool(want.get("note"))
    if want.get("note"):
        assert want["note"] in notes[0]


@pytest.fixture(scope="module")
def graded(real_data_dir, kept_trainings):
    """Every submission graded in one batch, the way a class is: each in its sandbox, two at a time,
    identical trainings trained once by the kit's trainer (and those of the suite's earlier batches
    replayed)."""
    reports = grade_notebooks([SUBMISSIONS], data_dir=real_data_dir, workers=2, trainings=kept_trainings)
    return {Path(report.submission).stem: report for report in reports}


@pytest.mark.slow
@pytest.mark.parametrize("name", NAMES)
def test_grading_gives_the_expected_score_and_failing_checks(name, graded):
    want, report = expected(name), graded[name]
    assert report.score == want["score"], [(c.id, c.message) for c in report.checks if not c.passed]
    assert report.max_score == 100
    assert (report.error is None) == (want["error"] is None)
    if want["error"]:
        assert want["error"] in report.error
    failing = {result.id: result.message for result in report.checks if not result.passed}
    assert set(failing) == set(want["failing"])
    for check_id, wanted in want["failing"].items():
        for phrase in phrases(wanted):
            assert phrase in failing[check_id], failing[check_id]
    assert [result.id for result in report.checks] == [check.id for check in CHECKS]
    if want.get("note"):
        assert any(want["note"] in note for note in report.notes), report.notes
