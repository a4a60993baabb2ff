"""`autograder demo`: train the reference solution's model end to end and show the result."""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from autograder.assignment import EPOCHS, SEED, SOURCE_NOTEBOOK

DEFAULT_PLOT = Path("build/demo/learning_curves.png")


@dataclass
class TrainingRun:
    """What training a submission's model produced: the kit's trainer's record and model."""

    model: Any = None  # the trainer's trained model
    history: dict[str, list[float]] = field(default_factory=dict)
    fit_calls: list = field(default_factory=list)  # autograder.trainer.records.FitRecord, one per fit call
    test_accuracy: float | None = None  # measured by the kit, never read from the student
    train_seconds: float = 0.0
    error: str | None = None  # why training could not run, in the student's terms

    @property
    def epochs(self) -> int:
        return max((len(series) for series in self.history.values()), default=0)


def train_submission(
    functions: dict[str, Callable | None],
    data,
    *,
    fast: bool = True,
    epochs: int = EPOCHS,
    seed: int = SEED,
    progress=None,
) -> TrainingRun:
    """Build, compile and train with the submission's own functions on the kit's data, the training
    itself by the kit's trainer in this process, as grading does it.

    ``data`` is an ``autograder.data.reference.ReferenceData``. ``progress``, a file, gets one line
    per epoch; without it training is silent. An exception in the student's code becomes
    ``run.error`` (in the student's terms, as the probes word it).
    """
    from autograder.errors import StudentError
    from autograder.sandbox.fit_client import FitClient, LocalTransport
    from autograder.sandbox.probe import Prober, build_compile_train
    from autograder.trainer.fast_path import epoch_progress
    from autograder.trainer.quiet import quiet_tensorflow
    from autograder.trainer.service import Trainer

    quiet_tensorflow()
    arrays = {"X_train": data.X_train, "y_train": data.y_train, "X_valid": data.X_valid, "y_valid": data.y_valid}
    trainer = Trainer(
        arrays, data.X_test, seed=seed, fast=fast, progress=[epoch_progress(progress)] if progress else []
    )
    client = FitClient(LocalTransport(trainer))
    run = TrainingRun()
    started = time.perf_counter()
    try:
        build_compile_train(
            Prober(functions), data.X_train, data.y_train, data.X_valid, data.y_valid, client=client, epochs=epochs,
            seed=seed,
        )
    except StudentError as error:  # the student's code failed: that is a result, not a crash of the grader
        run.error = str(error)
        return run
    run.train_seconds = time.perf_counter() - started
    record = trainer.finish()
    run.model, run.history, run.fit_calls = trainer.model, record.history(), record.calls
    refused = next((call.reason() for call in record.calls if not call.trained), None)
    if refused or record.predictions is None:
        run.error = refused or "`train_model` never called model.fit"
        return run
    run.test_accuracy = float((record.predictions == data.test_labels).mean())
    return run


def run_demo(
    notebook: Path = SOURCE_NOTEBOOK,
    *,
    data_dir: Path | None = None,
    plot_path: Path = DEFAULT_PLOT,
    epochs: int = EPOCHS,
    seed: int = SEED,
    fast: bool = True,
    out=sys.stdout,
):
    from autograder.data.reference import ReferenceData
    from autograder.errors import AutograderError
    from autograder.reports.plots import learning_curves, save_figure
    from autograder.submission.notebook import load_functions
    from autograder.trainer.quiet import quiet_tensorflow

    quiet_tensorflow()
    started = time.perf_counter()
    print(f"Loading the functions of {notebook}", file=out, flush=True)
    functions = load_functions(notebook)
    print("Loading Fashion-MNIST", file=out, flush=True)
    data = ReferenceData.load(data_dir)
    path = "fast path (steps_per_execution, XLA)" if fast else "Keras defaults"
    print(f"Training for {epochs} epochs, batch size 32, seed {seed}, {path}:", file=out, flush=True)
    run = train_submission(functions, data, fast=fast, epochs=epochs, seed=seed, progress=out)
    if run.error:
        raise AutograderError(f"{notebook}: training failed: {run.error}")
    save_figure(learning_curves(run.history, title="Reference solution: learning curves"), plot_path)
    print(
        f"\nTest accuracy: {run.test_accuracy:.4f} (measured on the 10,000 normalized test images)\n"
        f"Training time: {run.train_seconds:.1f} s for {run.epochs} epochs "
        f"({run.train_seconds / max(run.epochs, 1):.2f} s per epoch); "
        f"{time.perf_counter() - started:.1f} s in all\n"
        f"Learning curves: {plot_path}",
        file=out,
        flush=True,
    )
    return run
