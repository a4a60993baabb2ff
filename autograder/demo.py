"""`autograder demo`: train the reference solution's model end to end and show the result."""

from __future__ import annotations

import sys
import time
from pathlib import Path

from autograder.assignment import EPOCHS, SEED, SOURCE_NOTEBOOK

DEFAULT_PLOT = Path("build/demo/learning_curves.png")


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
    from autograder.errors import AutograderError
    from autograder.notebook import load_functions
    from autograder.plots import learning_curves, save_figure
    from autograder.reference import ReferenceData
    from autograder.training import quiet_tensorflow, train_submission

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
    save_figure(learning_curves(run.history_dict, title="Reference solution: learning curves"), plot_path)
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
