"""Time the reference model's training: Keras defaults against the kit's fast path, in one run.

Prints one JSON line per setting (epochs, seconds per epoch, test accuracy, peak RSS), then one
line with the arithmetic floor measured on this machine and one with the ratios. Each setting
trains in a fresh subprocess, so its peak RSS and its compile caches are its own. The settings:

- ``keras_defaults``: the lesson as a student runs it: Keras's default execution settings, and
  the pixels scaled the tutorial's way (``/ 255.0``, float64);
- ``keras_defaults_float32``: Keras's defaults on the kit's float32 data, to show what the
  execution settings alone buy;
- ``fast``: the kit's fast path (``autograder/trainer/fast_path.py``: each epoch's batches in one XLA
  program) on the kit's float32 data.

    .venv/bin/python benchmarks/train_reference.py            # 30 epochs, seed 42
    .venv/bin/python benchmarks/train_reference.py --epochs 3 # a quick look
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time

# setting -> (fast execution settings?, input dtype)
SETTINGS = {
    "keras_defaults": (False, "float64"),
    "keras_defaults_float32": (False, "float32"),
    "fast": (True, "float32"),
}
# Training FLOPs of a dense network: about 6 per parameter per example (forward 2, backward 4).
PARAMETERS, TRAIN_EXAMPLES, BATCH = 266_610, 55_000, 32


def train_one(setting: str, epochs: int, seed: int) -> dict:
    import numpy as np

    from autograder.assignment import SOURCE_NOTEBOOK
    from autograder.data.reference import ReferenceData
    from autograder.demo import train_submission
    from autograder.submission.notebook import load_functions

    fast, dtype = SETTINGS[setting]
    data = ReferenceData.load()
    if dtype == "float64":  # what `images / 255.0` gives
        data.__dict__["train_scaled"] = data.train_images / 255.0
        data.__dict__["X_test"] = data.test_images / 255.0
    assert data.X_train.dtype == np.dtype(dtype)
    run = train_submission(load_functions(SOURCE_NOTEBOOK), data, fast=fast, epochs=epochs, seed=seed)
    if run.error:
        sys.exit(f"{setting}: {run.error}")
    return {
        "setting": setting,
        "execution": "whole epochs in one XLA program" if fast else "Keras defaults",
        "batch_size": BATCH,
        "input_dtype": dtype,
        "epochs": run.epochs,
        "seconds": round(run.train_seconds, 2),
        "seconds_per_epoch": round(run.train_seconds / run.epochs, 3),
        "test_accuracy": round(run.test_accuracy, 4),
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }


def arithmetic_floor(epochs: int) -> dict:
    """Seconds the training's arithmetic alone would take at this machine's float32 matmul speed."""
    import numpy as np

    a = np.random.rand(BATCH, 784).astype(np.float32)
    b = np.random.rand(784, 300).astype(np.float32)
    for _ in range(50):
        a @ b
    repeats = 3000
    start = time.perf_counter()
    for _ in range(repeats):
        a @ b
    gflops = 2 * BATCH * 784 * 300 * repeats / (time.perf_counter() - start) / 1e9
    gflop_per_epoch = 6 * PARAMETERS * TRAIN_EXAMPLES / 1e9
    return {
        "setting": "arithmetic_floor",
        "gflop_per_epoch": round(gflop_per_epoch, 1),
        "matmul_gflops": round(gflops, 1),
        "epochs": epochs,
        "seconds": round(gflop_per_epoch * epochs / gflops, 2),
        "seconds_per_epoch": round(gflop_per_epoch / gflops, 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--settings", default=",".join(SETTINGS), help="comma-separated, from: " + ", ".join(SETTINGS))
    parser.add_argument("--one", choices=list(SETTINGS), help=argparse.SUPPRESS)  # a child's single setting
    args = parser.parse_args()

    if args.one:
        print(json.dumps(train_one(args.one, args.epochs, args.seed)))
        return

    results = {}
    for setting in args.settings.split(","):
        child = subprocess.run(
            [sys.executable, __file__, "--one", setting, "--epochs", str(args.epochs), "--seed", str(args.seed)],
            capture_output=True,
            text=True,
            env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
        )
        if child.returncode != 0:
            sys.exit(f"{setting} failed:\n{child.stderr[-3000:]}")
        results[setting] = json.loads(child.stdout.strip().splitlines()[-1])
        print(json.dumps(results[setting]), flush=True)
    floor = arithmetic_floor(args.epochs)
    print(json.dumps(floor), flush=True)
    if "fast" in results:
        ratios = {"setting": "ratios", "fast_over_floor": round(results["fast"]["seconds"] / floor["seconds"], 2)}
        for baseline in ("keras_defaults", "keras_defaults_float32"):
            if baseline in results:
                ratios[f"fast_speedup_over_{baseline}"] = round(
                    results[baseline]["seconds"] / results["fast"]["seconds"], 2
                )
        print(json.dumps(ratios))


if __name__ == "__main__":
    main()
