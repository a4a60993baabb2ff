"""Grading: submission → sanitize → execute in a sandbox → artifacts → checks → scoring → report.

``grade_notebooks`` grades many notebooks one after another. Each result is written to the
results folder, atomically, as soon as it is known; a batch run again after the grader was
killed picks up where it stopped (a result counts only for the exact bytes it graded). A
submission that cannot be read, crashes its process, runs out of time or memory, gets ``error``
and score 0, and the others are still graded.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import json
import os
import shutil
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

from autograder import __version__
from autograder.assignment import FUNCTIONS, SOURCE_NOTEBOOK
from autograder.judge.checks import CHECKS, MAX_SCORE, CheckResult, Evidence, run_check
from autograder.errors import AutograderError, NotebookError

@dataclass
class GradeReport:
    submission: str
    score: int
    max_score: int
    error: str | None
    checks: list[CheckResult]
    notes: list[str] = field(default_factory=list)
    # For the feedback page, not the contract's JSON: the learning curves and the confusion matrix.
    history: dict[str, list[float]] = field(default_factory=dict)
    confusion: list[list[int]] | None = None
    # What grading it cost, for the log, Gradescope's execution_time and the benchmarks: "seconds"
    # (from start to report, in the grader), "sandbox_peak_memory_mib" (the sandbox's largest process).
    usage: dict[str, float] = field(default_factory=dict)

    def to_json(self) -> dict:
        # Exactly the fields of the contract.
        return {
            "submission": self.submission,
            "score": self.score,
            "max_score": self.max_score,
            "error": self.error,
            "checks": [result.to_json() for result in self.checks],
        }

    @classmethod
    def from_json(cls, data: dict, notes=(), feedback=None, usage=None) -> "GradeReport":
        checks = [CheckResult(c["id"], c["points"], c["max_points"], c["passed"], c["message"]) for c in data["checks"]]
        report = cls(data["submission"], data["score"], data["max_score"], data["error"], checks, list(notes))
        report.history = dict((feedback or {}).get("history") or {})
        report.confusion = (feedback or {}).get("confusion")
        report.usage = dict(usage or {})
        return report

    def payload(self) -> dict:
        """Everything known about this result, as stored and as sent back by a cluster's worker."""
        return {
            "report": self.to_json(),
            "notes": self.notes,
            "feedback": {"history": self.history, "confusion": self.confusion},
            "usage": self.usage,
        }

    @classmethod
    def from_payload(cls, payload: dict) -> "GradeReport":
        return cls.from_json(payload["report"], payload.get("notes", []), payload.get("feedback"), payload.get("usage"))


def expand_paths(paths: Iterable[str | Path]) -> list[Path]:
    """Files as given; folders become the notebooks inside them (checkpoints left out), sorted."""
    found: list[Path] = []
    for path in map(Path, paths):
        if path.is_dir():
            found.extend(
                sorted(p for p in path.rglob("*.ipynb") if ".ipynb_checkpoints" not in p.parts and p.is_file())
            )
        else:
            found.append(path)
    return found


def ungraded(path: Path, reason: str, usage: dict | None = None) -> GradeReport:
    checks = [CheckResult(c.id, 0, c.points, False, f"not graded: {reason}") for c in CHECKS]
    return GradeReport(str(path), 0, MAX_SCORE, reason, checks, usage=dict(usage or {}))


def judge(path: Path, artifacts, data, training=None) -> GradeReport:
    """The trusted half: every check on the artifacts and the trainer's record, points from the table."""
    evidence = Evidence(artifacts, data, training)
    results = [run_check(check, evidence) for check in CHECKS]
    report = GradeReport(str(path), sum(r.points for r in results), MAX_SCORE, None, results)
    if training is not None:
        report.history = training.history()
        report.confusion = confusion_matrix(training.predictions, data)
        report.usage["trainings_run"] = training.trainings_run
        if training.reused:
            report.notes.append(
                "training reused: the grader's trainer had already trained this exact description (same model, "
                "compile settings, fit arguments, data and seed) for another submission of this batch"
            )
    return report


def confusion_matrix(predictions, data) -> list[list[int]] | None:
    """Rows: true class; columns: predicted class; on the 10,000 test images, from the trainer's predictions."""
    import numpy as np

    if predictions is None or predictions.shape != data.test_labels.shape:
        return None
    matrix = np.zeros((10, 10), dtype=int)
    np.add.at(matrix, (data.test_labels, np.clip(predictions, 0, 9)), 1)
    return matrix.tolist()


def collect_in_process(path: Path, inputs, *, train=True, test_images=None):
    """Run the probes in this process, the training through a trainer in this process too: for a
    student's own notebook on their own machine, and nbgrader's kernel. Returns the artifacts and
    the trainer's record (None without training)."""
    from autograder.sandbox.fit_client import FitClient, LocalTransport
    from autograder.submission.notebook import run_cells
    from autograder.sandbox.probe import collect
    from autograder.trainer.service import Trainer

    loaded = run_cells(path)
    functions = {name: loaded.function(name) for name in FUNCTIONS}
    trainer = Trainer.from_images(inputs.train_images, inputs.train_labels, test_images) if train else None
    client = FitClient(LocalTransport(trainer)) if train else None
    artifacts = collect(functions, inputs, cell_errors=loaded.cell_errors, client=client)
    return artifacts, trainer.finish() if trainer is not None else None


def import_keras_meanwhile() -> None:
    """Judging needs Keras. Imported in a thread once the first child runs, its 2.5 s cost nothing;
    started earlier, it would hold the interpreter while the grader prepares that child."""
    global _keras_import
    with _keras_import_lock:
        if _keras_import is None:
            _keras_import = threading.Thread(target=importlib.import_module, args=("keras",), daemon=True)
            _keras_import.start()


_keras_import: threading.Thread | None = None
_keras_import_lock = threading.Lock()


@dataclass
class Batch:
    """What every submission of a batch is graded with: the kit's data and inputs, the limits."""

    data: object  # autograder.data.reference.ReferenceData
    inputs: object  # autograder.data.inputs.ProbeInputs
    input_files: list[Path]  # the child's inputs, root's and read-only
    trainer_inputs: Path  # the trainer's: the training images and labels, and the test images
    trainings: Path | None  # the trainers' cache of trainings (None: every submission trains)
    limits: object  # autograder.limits.Limits
    hide: list[Path] = field(default_factory=list)
    stop: threading.Event | None = None


def trainer_environment(home: Path) -> dict[str, str]:
    """The trainer's: one thread, like every sandbox, so a training key means one computation."""
    from autograder.sandbox.launch import GRADING_THREADS

    return {
        "TF_CPP_MIN_LOG_LEVEL": "3",
        "MPLBACKEND": "Agg",
        "KERAS_HOME": str(home / ".keras"),
        **{name: str(GRADING_THREADS) for name in ("TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS", "OMP_NUM_THREADS")},
    }


@contextlib.contextmanager
def training_desk(folder: Path, batch: Batch):
    """A trainer process and the desk serving ``folder/trainer.sock`` for one submission."""
    from autograder.sandbox.scratch import new_folder
    from autograder.trainer.desk import FitDesk, TrainerProcess

    home = new_folder("trainer")
    trainer = desk = None
    try:
        trainer = TrainerProcess(
            batch.trainer_inputs, batch.trainings, home=home, limits=batch.limits, env=trainer_environment(home)
        )
        desk = FitDesk(folder, trainer, batch.limits.training_seconds)
        yield desk
    finally:
        if desk is not None:
            desk.finish(predict=not (batch.stop is not None and batch.stop.is_set()))
        elif trainer is not None:
            trainer.close()
        shutil.rmtree(home, ignore_errors=True)


def grade_in_sandbox(path: Path, batch: Batch) -> GradeReport:
    from autograder.sandbox.artifacts import ArtifactError, read_artifacts
    from autograder.sandbox.launch import run_child
    from autograder.submission.sanitize import write_sanitized
    from autograder.sandbox.scratch import new_folder

    scratch = new_folder("sandbox")
    try:
        try:
            write_sanitized(path, SOURCE_NOTEBOOK, scratch / "submission.ipynb")
        except NotebookError as error:
            return ungraded(path, error.problem)
        (scratch / "inputs").mkdir()
        for file in batch.input_files:  # read-only for the child: they are root's
            os.link(file, scratch / "inputs" / file.name)
        with training_desk(scratch, batch) as desk:
            run = run_child(scratch, batch.limits, hide=list(batch.hide), on_started=import_keras_meanwhile, stop=batch.stop)
        training = desk.record
        usage = {"sandbox_peak_memory_mib": round(run.peak_memory_bytes / 2**20)} if run.peak_memory_bytes else {}
        if run.fault:
            last = run.stderr_tail.strip().splitlines()[-1:]
            return ungraded(path, run.fault + (f" (its last words: {last[0][:300]})" if last else ""), usage)
        try:
            artifacts = read_artifacts(scratch / "artifacts")
        except (ArtifactError, OSError, ValueError) as error:
            tail = run.stderr_tail.strip().splitlines()[-1:] or ["no message"]
            return ungraded(
                path, f"the notebook's code produced no readable results ({error}; last words: {tail[0][:300]})", usage
            )
        report = judge(path, artifacts, batch.data, training)
        report.usage.update(usage)
        report.notes.extend(lint_notes(path))
        return report
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def digest(path: Path) -> str:
    """What a stored result is valid for: these exact bytes, graded by this version of the kit."""
    content = hashlib.sha256(path.read_bytes() if path.is_file() else b"<missing>").hexdigest()
    return f"{__version__}:{content}"


def result_file(results: Path, path: Path) -> Path:
    name = hashlib.sha256(str(path.resolve()).encode()).hexdigest()[:16]
    return results / f"{path.stem}-{name}.json"


def stored_report(results: Path | None, path: Path) -> GradeReport | None:
    if results is None:
        return None
    try:
        stored = json.loads(result_file(results, path).read_text())
        if stored.get("digest") == digest(path):
            return GradeReport.from_payload(stored)
    except (OSError, ValueError, KeyError, TypeError):
        pass
    return None


def store_report(results: Path, path: Path, report: GradeReport) -> None:
    """Write one result atomically: a reader (or a rerun) sees the old file or the new, never half."""
    results.mkdir(parents=True, exist_ok=True)
    target = result_file(results, path)
    from autograder.reports.formats import json_safe

    payload = {"digest": digest(path), **report.payload()}
    with tempfile.NamedTemporaryFile("w", dir=results, prefix=".tmp-", suffix=".json", delete=False) as handle:
        json.dump(json_safe(payload), handle, allow_nan=False)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(handle.name, target)


def grade_notebooks(
    paths: Iterable[str | Path],
    *,
    data_dir=None,
    out=None,
    sandbox: bool = True,
    limits=None,
    results: Path | None = None,
    private: Iterable[Path] = (),
    workers: int = 1,
    scheduler: str | None = None,
    reuse: bool = True,
) -> list[GradeReport]:
    """Grade every notebook; with ``results``, store each result as it is known and skip those stored.

    ``private``: more files the sandboxed code must not read (the gradebook being written).
    ``scheduler``: the address of a Dask scheduler to grade on instead of this machine.
    ``reuse``: replay a training the batch's trainers already ran from an identical description
    (autograder.trainer.service).
    """
    if scheduler:
        return grade_notebooks_on_cluster(paths, scheduler, data_dir=data_dir, out=out, limits=limits, results=results)
    from autograder.data.inputs import ProbeInputs
    from autograder.limits import Limits
    from autograder.data.reference import ReferenceData
    from autograder.sandbox.launch import describe_isolation
    from autograder.sandbox.scratch import new_folder, remove_left_by_dead_graders
    from autograder.trainer.fast_path import quiet_tensorflow

    quiet_tensorflow()
    notebooks = expand_paths(paths)
    if not notebooks:
        raise AutograderError("no notebooks to grade: give .ipynb files or folders that hold them")
    data = ReferenceData.load(data_dir)
    limits = limits or Limits()
    inputs = ProbeInputs.from_reference(data)
    if out and sandbox:
        print(f"sandbox: {describe_isolation()}", file=out, flush=True)
    count, freed = remove_left_by_dead_graders()
    if count and out:
        print(f"removed {count} temporary folder{'s' * (count > 1)} ({freed / 2**20:.0f} MiB) left by graders "
              "that were killed", file=out, flush=True)
    folder = new_folder("batch")
    os.chmod(folder, 0o755)
    stopping = threading.Event()  # the grader is being stopped: what runs now is no result
    batch = Batch(
        data=data,
        inputs=inputs,
        input_files=inputs.save(folder / "inputs") if sandbox else [],
        trainer_inputs=save_trainer_inputs(data, folder / "trainer"),
        trainings=shared_folder(folder / "trainings") if reuse else None,
        limits=limits,
        hide=sorted(
            {p.resolve().parent for p in notebooks}
            | ({results.resolve()} if results else set())
            | {Path(p).resolve() for p in private if Path(p).exists()}
        ),
        stop=stopping,
    )
    reports = []
    try:
        progress = Progress(len(notebooks), out)

        def grade_one(path: Path) -> GradeReport:
            if stopping.is_set():
                raise KeyboardInterrupt
            report = stored_report(results, path)
            if report is not None:
                report.notes.append("graded earlier: result read from the results folder")
                return report
            progress.started(path)
            started = time.monotonic()
            try:
                report = grade_in_sandbox(path, batch) if sandbox else grade_unsandboxed(path, batch)
            except Exception as error:  # a fault of this submission must never stop the batch
                report = ungraded(path, f"the grader failed on this notebook: {type(error).__name__}: {error}")
            report.usage["seconds"] = round(time.monotonic() - started, 1)
            if stopping.is_set():  # its sandbox was killed by the grader's stop, not by its own fault
                raise KeyboardInterrupt
            if results is not None:
                store_report(results, path, report)
            return report

        if workers > 1:
            from autograder.batch.order import start_order

            pool = ThreadPoolExecutor(max_workers=workers)
            try:
                # The longest expected first, so that no long one starts last while the other workers idle.
                futures = {index: pool.submit(grade_one, notebooks[index]) for index, _ in start_order(notebooks)}
                for future in as_completed(futures.values()):
                    progress.finished(future.result())
                reports = [futures[index].result() for index in range(len(notebooks))]  # in the order given
            except BaseException:  # Ctrl-C or SIGTERM: stop now, not after every queued submission
                from autograder.sandbox.launch import stop_running_sandboxes

                stopping.set()
                pool.shutdown(wait=False, cancel_futures=True)
                stop_running_sandboxes(stopping)
                raise
            finally:
                pool.shutdown(wait=True)
        else:
            for path in notebooks:
                reports.append(grade_one(path))
                progress.finished(reports[-1])
        progress.close()
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return reports


def shared_folder(folder: Path) -> Path:
    """The trainers' cache: each trainer runs as a user of its own, and all may add to it."""
    folder.mkdir()
    os.chmod(folder, 0o1777)
    return folder


def save_trainer_inputs(data, folder: Path) -> Path:
    """The trainer's inputs: the training set and the test images (never their labels), root's."""
    import numpy as np

    folder.mkdir(parents=True)
    for name, array in (("train_images", data.train_images), ("train_labels", data.train_labels),
                        ("test_images", data.test_images)):
        np.save(folder / f"{name}.npy", array, allow_pickle=False)
    return folder


def lint_notes(path: Path) -> list[str]:
    """Feedback read from the notebook's code without running it (see autograder.submission.lint)."""
    from autograder.submission.lint import notebook_notes
    from autograder.submission.notebook import read_notebook

    try:
        return notebook_notes(read_notebook(path))
    except NotebookError:
        return []


def grade_unsandboxed(path: Path, batch: Batch) -> GradeReport:
    """Grade in this process: for trusted notebooks only (an instructor's copy). Everything else is
    the sandbox's path: the same trainer process and desk, the artifacts written and read back."""
    from autograder.sandbox.artifacts import read_artifacts, write_artifacts
    from autograder.sandbox.fit_client import FitClient, SocketTransport
    from autograder.submission.notebook import run_cells
    from autograder.sandbox.probe import collect
    from autograder.sandbox.scratch import new_folder

    scratch = new_folder("unsandboxed")
    try:
        try:
            loaded = run_cells(path, cell_seconds=batch.limits.cell_seconds)
        except NotebookError as error:
            return ungraded(path, error.problem)
        functions = {name: loaded.function(name) for name in FUNCTIONS}
        with training_desk(scratch, batch) as desk:
            client = FitClient(SocketTransport(scratch / "trainer.sock"))
            artifacts = collect(
                functions, batch.inputs, cell_errors=loaded.cell_errors, client=client,
                call_seconds=batch.limits.cell_seconds, training_seconds=batch.limits.training_seconds,
            )
        write_artifacts(artifacts, scratch / "artifacts")
        report = judge(path, read_artifacts(scratch / "artifacts"), batch.data, desk.record)
        report.notes.extend(lint_notes(path))
        return report
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def grade_notebooks_on_cluster(paths, scheduler, *, data_dir=None, out=None, limits=None, results=None):
    from autograder.batch.cluster import grade_on_cluster
    from autograder.limits import Limits

    notebooks = expand_paths(paths)
    if not notebooks:
        raise AutograderError("no notebooks to grade: give .ipynb files or folders that hold them")
    progress = Progress(len(notebooks), out)

    def stored(path):
        report = stored_report(results, path)
        if report is not None:
            report.notes.append("graded earlier: result read from the results folder")
        return report

    def store(path, report):
        if results is not None:
            store_report(results, path, report)

    reports = grade_on_cluster(
        notebooks, scheduler, data_dir=data_dir, limits=limits or Limits(),
        grade_one_stored=stored, store=store, progress=progress,
    )
    progress.close()
    return reports


class Progress:
    """Where a batch stands: a live line on a terminal, plain lines in a log."""

    def __init__(self, total: int, out):
        self.total, self.out = total, out
        self.done = self.failed = 0
        self.started_at = time.monotonic()
        self.live = bool(out) and hasattr(out, "isatty") and out.isatty()
        self.lock = threading.Lock()

    def started(self, path: Path) -> None:
        if self.out and not self.live:
            with self.lock:
                print(f"grading {path}", file=self.out, flush=True)

    def finished(self, report: GradeReport) -> None:
        if not self.out:
            return
        with self.lock:
            self.done += 1
            self.failed += report.error is not None
            elapsed = time.monotonic() - self.started_at
            left = elapsed / self.done * (self.total - self.done)
            line = f"[{self.done}/{self.total}] {self.failed} could not be graded, about {left / 60:.0f} min left"
            if self.live:
                print("\r\033[K", end="", file=self.out)
            print(format_report(report), file=self.out)
            if report.usage:
                print(f"  {format_usage(report.usage)}", file=self.out)
            print(line, end="\r" if self.live else "\n", file=self.out, flush=True)

    def close(self) -> None:
        if self.out and self.live:
            print(file=self.out, flush=True)


def format_usage(usage: dict) -> str:
    parts = []
    if "seconds" in usage:
        parts.append(f"took {usage['seconds']:.1f} s")
    if "sandbox_peak_memory_mib" in usage:
        parts.append(f"sandbox peak memory {usage['sandbox_peak_memory_mib']:.0f} MiB")
    return "; ".join(parts)


STATUS = {"passed": "PASS", "failed": "FAIL", "not_done": "TODO", "skipped": "SKIP"}


def status(result: CheckResult) -> str:
    if result.skipped:
        return STATUS["skipped"]
    if result.not_done:
        return STATUS["not_done"]
    return STATUS["passed"] if result.passed else STATUS["failed"]


def format_check(result: CheckResult) -> str:
    points = f"{'-' if result.skipped else result.points}/{result.max_points}"
    return f"  {status(result)}  {result.id:<19}{points:>7}  {result.message}"


def format_report(report: GradeReport) -> str:
    lines = [f"{report.submission}: {report.score}/{report.max_score}"]
    if report.error:
        lines.append(f"  not graded: {report.error}")
    else:
        lines.extend(format_check(result) for result in report.checks)
    lines.extend(f"  note: {note}" for note in report.notes)
    return "\n".join(lines)
