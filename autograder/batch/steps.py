"""One submission's steps, written once: sanitize → run → read the artifacts → judge → lint notes.

As nbgrader lists its preprocessors, a submission goes through a list of steps, each taking the
``Submission`` (what the steps before it made of it) and either filling it in or returning the
report of a submission that cannot be graded, which ends its way there. Two lists, one per place
the code runs: ``SANDBOXED`` runs the notebook's code in the sandbox's child, ``IN_PROCESS`` in
this process (``--unsandboxed``, for trusted notebooks only); everything else is the same: the
sanitized notebook, the kit's trainer in a process of its own behind the desk, the artifacts
written and read back, the judge. The local pool and a cluster's workers both grade each
submission with ``grade_submission``.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import shutil
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from autograder.assignment import FUNCTIONS, SOURCE_NOTEBOOK
from autograder.batch.shared import Batch
from autograder.errors import MemoryShareExceeded, NotebookError
from autograder.i18n import ENGLISH, _, choose_language, speaking
from autograder.judge.report import GradeReport, judge

LAST_WORDS = 300  # characters of a child's last line of stderr shown in a report


@dataclass
class Submission:
    """One submission on its way through the steps."""

    path: Path  # as given: reports and notes name it
    batch: Batch
    scratch: Path  # this submission's folder: the sanitized notebook, the desk's socket, the artifacts
    # The notebook's bytes, read once (by the batch, else by sanitize): what is graded and linted is
    # what the stored result is for, whatever the file holds by then.
    content: bytes | None = None
    artifacts: object = None  # autograder.sandbox.artifacts.Artifacts, as read back
    training: object = None  # autograder.trainer.records.TrainingRecord, the desk's
    last_words: str = ""  # the last line the child wrote to stderr
    usage: dict = field(default_factory=dict)
    report: GradeReport | None = None
    # What the student reads, each step speaking it (grade_steps): the batch's --lang, else the
    # notebook's own once sanitize has read it, else the locale's.
    language: str = ENGLISH

    def ungraded(self, reason: str) -> GradeReport:
        return GradeReport.ungraded(self.path, reason, self.usage, self.batch.checks)


def language_before_reading(config) -> str:
    """What a submission is told in before its notebook says its own language (it cannot be read, or
    the grader failed on it): the batch's --lang, else the locale's, else English."""
    return (config.lang if config is not None else None) or choose_language()


def sanitize(sub: Submission) -> GradeReport | None:
    """Only the source's set-up cells and the student's solution cells run (autograder.submission.sanitize)."""
    from autograder.submission.notebook import read_submitted_bytes
    from autograder.submission.sanitize import write_sanitized

    try:
        if sub.content is None:
            sub.content = read_submitted_bytes(sub.path)
        own = write_sanitized(sub.path, SOURCE_NOTEBOOK, sub.scratch / "submission.ipynb", sub.content)
    except NotebookError as error:
        return sub.ungraded(error.problem)
    sub.language = sub.batch.config.lang or own or sub.language  # --lang, the notebook's, the locale's
    return None


def run_in_sandbox(sub: Submission) -> GradeReport | None:
    """The sanitized notebook's cells and the probes in the sandbox's child, its training by the kit's trainer."""
    from autograder.sandbox.launch import run_child

    batch = sub.batch
    (sub.scratch / "inputs").mkdir()
    for file in batch.input_files:  # read-only for the child: they are root's
        os.link(file, sub.scratch / "inputs" / file.name)
    with training_desk(sub.scratch, batch) as desk:
        run = run_child(sub.scratch, batch.limits, hide=list(batch.hide), stop=batch.stop, epochs=batch.config.epochs,
                        lang=sub.language)
    stopped_at_share(sub, run.cgroup_oom_kills or desk.oom_killed)
    sub.training = desk.record
    if run.peak_memory_bytes:
        sub.usage["sandbox_peak_memory_mib"] = round(run.peak_memory_bytes / 2**20)
    sub.last_words = (run.stderr_tail.strip().splitlines()[-1:] or [""])[0][:LAST_WORDS]
    fault = run.fault
    if fault and sub.last_words:
        fault = _("{fault} (its last words: {words})").format(fault=fault, words=sub.last_words)
    if fault:
        return sub.ungraded(fault)
    return None


def stopped_at_share(sub: Submission, killed: bool) -> None:
    """Raise ``MemoryShareExceeded`` where the kernel killed a process of the submission at its share of the
    machine's memory, below the memory limit: a grade never depends on how many ran beside it."""
    held = sub.batch.limits.group_memory_bytes
    if held is not None and killed and not sub.batch.stopping:
        raise MemoryShareExceeded(sub.path, held)


def run_in_process(sub: Submission) -> GradeReport | None:
    """The same as ``run_in_sandbox``, in this process: for trusted notebooks only (an instructor's copy)."""
    from autograder.sandbox.artifacts import write_artifacts
    from autograder.sandbox.fit_client import FitClient, SocketTransport
    from autograder.sandbox.probe import collect
    from autograder.submission.notebook import run_cells

    limits = sub.batch.limits
    try:
        loaded = run_cells(sub.scratch / "submission.ipynb", cell_seconds=limits.cell_seconds)
    except NotebookError as error:
        return sub.ungraded(error.problem)
    with training_desk(sub.scratch, sub.batch) as desk:
        client = FitClient(SocketTransport(sub.scratch / "trainer.sock"))
        artifacts = collect(
            contract_functions(loaded), sub.batch.inputs, cell_errors=loaded.cell_errors, client=client,
            call_seconds=limits.cell_seconds, training_seconds=limits.training_seconds, epochs=sub.batch.config.epochs,
        )
    stopped_at_share(sub, desk.oom_killed)
    write_artifacts(artifacts, sub.scratch / "artifacts")
    sub.training = desk.record
    return None


def read_back_artifacts(sub: Submission) -> GradeReport | None:
    """What the code handed back, read as untrusted data (autograder.sandbox.artifacts)."""
    from autograder.errors import ArtifactError
    from autograder.sandbox.artifacts import read_artifacts

    keras_imported()  # the models among them are read with Keras
    try:
        sub.artifacts = read_artifacts(sub.scratch / "artifacts")
    except (ArtifactError, OSError, ValueError) as error:
        return sub.ungraded(_("the notebook's code produced no readable results ({error}; last words: {words})").format(
            error=error, words=sub.last_words or _("no message")))
    return None


def judge_artifacts(sub: Submission) -> None:
    """Every check, in this process, on the artifacts and the trainer's record (autograder.judge.report)."""
    sub.report = judge(sub.path, sub.artifacts, sub.batch.data, sub.training, sub.batch.config)
    sub.report.usage.update(sub.usage)


def add_lint_notes(sub: Submission) -> None:
    sub.report.notes.extend(lint_notes(sub.path, sub.content))


SANDBOXED = (sanitize, run_in_sandbox, read_back_artifacts, judge_artifacts, add_lint_notes)
IN_PROCESS = (sanitize, run_in_process, read_back_artifacts, judge_artifacts, add_lint_notes)


def grade_steps(path: Path, batch: Batch, content: bytes | None = None) -> GradeReport:
    """``path`` (its bytes ``content``, where the caller read them) through the batch's steps, in a
    scratch folder of its own."""
    from autograder.sandbox.scratch import new_folder

    sub = Submission(path, batch, new_folder("sandbox" if batch.sandbox else "unsandboxed"), content=content,
                     language=language_before_reading(batch.config))
    try:
        for step in SANDBOXED if batch.sandbox else IN_PROCESS:
            with speaking(sub.language):  # what each step tells the student, in the student's language
                stopped = step(sub)
            if stopped is not None:
                return stopped
        return sub.report
    finally:
        shutil.rmtree(sub.scratch, ignore_errors=True)


def unreadable(path: Path, error: NotebookError, config) -> GradeReport:
    """The report of a submission whose file is no notebook to read: nothing of it graded."""
    from autograder.judge.checks import checks_table

    with speaking(language_before_reading(config)):
        return GradeReport.ungraded(path, error.problem, table=checks_table(config))


FAULT_CHARACTERS = 300  # of a fault's own text, which may quote what the student wrote: it is in every check's message


def grade_submission(path: Path, batch: Batch, content: bytes | None = None) -> GradeReport:
    """Grade one submission, timed: ``content``, its bytes as the caller read them (``read_submitted_bytes``),
    else the file's as the first step reads them. A fault of the grader on it is that submission's
    result: it must never stop the batch."""
    started = time.monotonic()
    try:
        report = grade_steps(path, batch, content)
    except MemoryShareExceeded:  # the caller grades it again alone (autograder.batch.local.grade_here)
        raise
    except Exception as error:
        with speaking(language_before_reading(batch.config)):
            report = GradeReport.ungraded(path, _("the grader failed on this notebook: {error}").format(
                error=f"{type(error).__name__}: {str(error)[:FAULT_CHARACTERS]}"), table=batch.checks)
    report.usage["seconds"] = round(time.monotonic() - started, 1)
    return report


def trainer_environment(home: Path) -> dict[str, str]:
    """The trainer's: one thread, like every sandbox, so a training key means one computation."""
    from autograder.sandbox.launch import GRADING_THREADS

    return {
        "TF_CPP_MIN_LOG_LEVEL": "3",
        "MPLBACKEND": "Agg",
        "KERAS_HOME": str(home / ".keras"),
        **{name: str(GRADING_THREADS)
           for name in ("TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS", "OMP_NUM_THREADS")},
    }


@contextlib.contextmanager
def training_desk(folder: Path, batch: Batch):
    """The desk serving ``folder/trainer.sock`` for one submission, with this thread's warm trainer or
    a new one (autograder.trainer.desk.WarmTrainers)."""
    from autograder.sandbox.scratch import new_folder
    from autograder.trainer.desk import FitDesk, TrainerProcess

    trainer = batch.trainers.take() if batch.trainers else None
    if trainer is None:
        home = new_folder("trainer")
        trainer = TrainerProcess(
            batch.trainer_inputs, batch.trainings, home=home, limits=batch.limits, env=trainer_environment(home),
            stop=batch.stop,
        )
    killed_before = trainer.oom_kills()
    desk = None
    interrupted = False  # Ctrl-C or SIGTERM in this thread, or a fault: what the trainer runs is no result
    try:
        desk = FitDesk(folder, trainer, batch.limits.training_seconds, on_first_call=import_keras_meanwhile)
        yield desk
    except BaseException:
        interrupted = True
        raise
    finally:
        try:
            if desk is not None:
                desk.finish(predict=not (batch.stopping or interrupted))
                desk.oom_killed = trainer.oom_kills() > killed_before
        finally:
            if batch.trainers:
                batch.trainers.give_back(trainer, served=desk is not None and desk.served)
            else:
                trainer.close()


def import_keras_meanwhile() -> None:
    """Judging needs TensorFlow and Keras (5 s here). Imported in a thread once the first submission's
    code calls ``fit``, they take a core its trainer leaves free; started earlier, they would slow
    that child's own TensorFlow start, which every grading waits for."""
    global _keras_import
    with _keras_import_lock:
        if _keras_import is None:
            _keras_import = threading.Thread(target=_import_keras_in_thread, daemon=True, name="keras-import")
            _keras_import.start()


def keras_imported() -> None:
    """Keras in this process, imported as ``import_keras_meanwhile`` does (a submission that never
    called ``fit`` started no import). Where the thread's import failed, it is tried again here, and
    its error, if it fails again, is this submission's result."""
    import_keras_meanwhile()
    _keras_import.join()
    if "keras" not in sys.modules:
        with _keras_import_lock:
            import_keras()


def import_keras() -> None:
    from autograder.trainer.quiet import quiet_tensorflow

    quiet_tensorflow(beside_threads=True)
    importlib.import_module("keras")


def _import_keras_in_thread() -> None:
    try:
        import_keras()
    except Exception:  # tried again by ``keras_imported``, where its error has a submission to go to
        pass


_keras_import: threading.Thread | None = None
_keras_import_lock = threading.Lock()


def contract_functions(loaded) -> dict:
    """The assignment's functions a loaded notebook defines, by name (None for one it does not)."""
    return {name: loaded.function(name) for name in FUNCTIONS}


def collect_in_process(path: Path, inputs, *, train=True, test_images=None):
    """Run the probes in this process, the training through a trainer in this process too: for a
    student's own notebook on their own machine. Returns the artifacts and the trainer's record
    (None without training)."""
    from autograder.sandbox.fit_client import FitClient, LocalTransport
    from autograder.sandbox.probe import collect
    from autograder.submission.notebook import run_cells
    from autograder.trainer.service import Trainer

    loaded = run_cells(path)
    trainer = Trainer.from_images(inputs.train_images, inputs.train_labels, test_images) if train else None
    client = FitClient(LocalTransport(trainer)) if train else None
    artifacts = collect(contract_functions(loaded), inputs, cell_errors=loaded.cell_errors, client=client)
    return artifacts, trainer.finish() if trainer is not None else None


def lint_notes(path: Path, content: bytes | None = None) -> list[str]:
    """Feedback read from the notebook's code (its bytes ``content``, where read already) without
    running it (see autograder.submission.lint)."""
    from autograder.submission.lint import notebook_notes
    from autograder.submission.notebook import read_notebook

    try:
        return notebook_notes(read_notebook(path, content))
    except Exception:  # notes are extras: a report already judged is never lost to them
        return []
