"""A student's self-check: the public checks on their own notebook, fast by default.

The training check trains a few epochs on a few images (seconds) to see that ``train_model`` honours
its ``epochs`` and validation data; the full training runs only when ``full`` is set, and the
report says how to run it, with the notebook's real path. Hidden checks run only when grading. The
full training is of the epochs grading asks for: the instructor's ``autograder.toml`` where one is found
from the notebook's folder (``autograder.config.epochs_in_effect``), else the default 30.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from pathlib import Path

from autograder.assignment import EPOCHS
from autograder.i18n import ENGLISH, _, speaking
from autograder.judge.checks import CHECKS
from autograder.judge.evidence import CheckResult, run_check, skipped


def full_hint(notebook: str | Path, epochs: int = EPOCHS) -> str:
    """How to run the full training on this notebook, with its real path (escaped: a TA may check a student's
    notebook, whose name is theirs)."""
    from autograder.text import terminal_text

    command = terminal_text(shlex.quote(str(notebook)))
    if epochs == EPOCHS:
        return _("run `autograder check --full {notebook}` (or `pytest --full` in its folder) to train for "
                 "{epochs} epochs, about a minute").format(notebook=command, epochs=epochs)
    return _("run `autograder check --full {notebook}` (or `pytest --full` in its folder) to train for "
             "{epochs} epochs").format(notebook=command, epochs=epochs)


@dataclass
class SelfCheckReport:
    notebook: str
    results: list[CheckResult]
    hidden_points: int
    notes: list[str]
    epochs: int = EPOCHS  # of the full training
    lang: str = ENGLISH  # the language its messages are in, and its lines are written in

    @property
    def score(self) -> int:
        return sum(r.points for r in self.results)

    @property
    def checked_points(self) -> int:
        return sum(r.max_points for r in self.results if not r.skipped)


def public_checks():
    return [check for check in CHECKS if not check.hidden]


def self_check(notebook: str | Path, *, full: bool = False, data_dir=None, lang: str | None = None) -> SelfCheckReport:
    """The public checks on a student's own notebook, run in this process (it is their own code).

    The training check first trains a few epochs on a few images (``autograder.quick_training``);
    with ``full``, and if that passed, it trains for the epochs grading asks for, a line per epoch."""
    import sys

    from autograder.batch.steps import contract_functions, lint_notes
    from autograder.config import epochs_in_effect
    from autograder.data.inputs import ProbeInputs
    from autograder.data.reference import ReferenceData
    from autograder.i18n import choose_language
    from autograder.judge.evidence import Evidence
    from autograder.nbgrader_cells import quiet_tensorflow
    from autograder.quick_training import QUICK_EPOCHS, QUICK_TRAIN, quick_training
    from autograder.sandbox.fit_client import FitClient, LocalTransport
    from autograder.sandbox.probe import collect
    from autograder.submission.notebook import read_notebook, run_cells
    from autograder.trainer.fast_path import epoch_progress
    from autograder.trainer.service import Trainer

    quiet_tensorflow()
    epochs = epochs_in_effect(Path(notebook).resolve().parent)
    language = choose_language(lang, read_notebook(Path(notebook)))
    data = ReferenceData.load(data_dir)
    inputs = ProbeInputs.from_reference(data)
    with speaking(language):  # what the student's code did wrong, said in the student's language
        loaded = run_cells(Path(notebook))
        functions = contract_functions(loaded)
        quick = quick_training(functions, inputs, loaded.cell_errors)
        trainer = None
        if full and quick is None:
            trainer = Trainer.from_images(data.train_images, data.train_labels, data.test_images,
                                          progress=[epoch_progress(sys.stdout)])
        client = FitClient(LocalTransport(trainer)) if trainer is not None else None
        artifacts = collect(functions, inputs, cell_errors=loaded.cell_errors, client=client, epochs=epochs)
    evidence = Evidence(artifacts, data, trainer.finish() if trainer is not None else None, epochs=epochs)

    def result(check) -> CheckResult:
        if check.id == "training" and quick is not None:
            return quick
        if check.needs_training and trainer is None:
            passed = _("the quick check passed ({epochs} epochs on {images} images)").format(
                epochs=QUICK_EPOCHS, images=QUICK_TRAIN)
            return skipped(check, _("skipped: {reason}; {hint}").format(reason=passed,
                                                                        hint=full_hint(notebook, epochs)))
        return run_check(check, evidence)

    hidden = sum(check.points for check in CHECKS if check.hidden)
    with speaking(language):
        results = [result(check) for check in public_checks()]
        notes = lint_notes(Path(notebook))
    return SelfCheckReport(str(notebook), results, hidden, notes, epochs, language)


def format_self_check(report: SelfCheckReport) -> str:
    """The report as the terminal shows it, in the language of its messages."""
    with speaking(report.lang):
        return "\n".join(self_check_lines(report))


def self_check_lines(report: SelfCheckReport) -> list[str]:
    from autograder.nbgrader_cells import hidden_line
    from autograder.reports.text import format_check
    from autograder.text import terminal_text

    lines = [_("Self-check of {notebook} (public checks)").format(notebook=terminal_text(report.notebook))]
    lines.extend(format_check(result) for result in report.results)
    not_done = [r.id for r in report.results if r.not_done]
    failed = [r.id for r in report.results if not r.passed and not r.skipped and not r.not_done]
    skipped_ids = [r.id for r in report.results if r.skipped]
    lines.append(_("Score on the checks run: {score}/{points}").format(score=report.score,
                                                                      points=report.checked_points))
    if not_done:
        lines.append(_("Not done yet: {checks}.").format(checks=", ".join(not_done)))
    if failed:
        lines.append(_("To fix: {checks} (read the messages above).").format(checks=", ".join(failed)))
    if skipped_ids:
        lines.append(_("Skipped: {checks}; {hint}.").format(checks=", ".join(skipped_ids),
                                                            hint=full_hint(report.notebook, report.epochs)))
    lines.extend(_("Note: {note}").format(note=note) for note in report.notes)
    lines.append(hidden_line(report.hidden_points))
    return lines
