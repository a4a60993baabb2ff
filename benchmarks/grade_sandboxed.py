"""What the sandbox costs: grading one correct submission against training its model, in one run.

Prints three JSON lines per round and the ratios of the totals: the seconds the fast path takes to
train the reference solution's model in a fresh process on the machine's cores, the same on the one
thread a grading trainer has (``GRADING_THREADS``), and the seconds ``grade_notebooks`` takes to
grade the same solution in the sandbox, from the notebook to the report (start-up of the child,
probes, training, artifacts, checks). The three alternate, two rounds by default. The issue's goal:
grading ≤ 1.2 × training on the machine's cores; one thread's training over it is the floor of
that ratio while a grading trains on one thread.

    .venv/bin/python benchmarks/grade_sandboxed.py
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOK = ROOT / "tests" / "submissions" / "passes_all.ipynb"


def training_seconds(threads: int | None = None) -> dict:
    """The fast path's training alone; on ``threads`` TensorFlow threads as a sandbox sets them, or
    on all the machine's cores as TensorFlow picks."""
    env = dict(os.environ)
    if threads:
        env.update({name: str(threads) for name in ("TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS",
                                                     "OMP_NUM_THREADS")})
    child = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "train_reference.py"), "--one", "fast"],
        capture_output=True,
        text=True,
        check=True,
        env=env,
    )
    return json.loads(child.stdout.strip().splitlines()[-1])


def grading_seconds() -> dict:
    from autograder import skip_slow_optional_imports
    from autograder.batch.local import grade_notebooks
    from autograder.data.reference import ReferenceData
    from autograder.sandbox.method import isolation

    skip_slow_optional_imports()  # as `autograder grade` does
    ReferenceData.load()  # the data is read once per batch, not per submission
    started = time.perf_counter()
    report = grade_notebooks([NOTEBOOK])[0]
    return {
        "setting": "grade_in_sandbox",
        "isolation": isolation(),
        "score": report.score,
        "seconds": round(time.perf_counter() - started, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=2, help="training and grading alternate this many times")
    args = parser.parse_args()
    # Alternating, so that a slow minute of this shared machine lands on both sides alike.
    from autograder.sandbox.launch import GRADING_THREADS

    trained, one_thread, graded = [], [], []
    for round_ in range(1, args.rounds + 1):
        for setting, threads, seconds in (("train_fast_path", None, trained),
                                          ("train_fast_path_grading_threads", GRADING_THREADS, one_thread)):
            train = training_seconds(threads)
            print(json.dumps({"setting": setting, "threads": threads or "default", "round": round_,
                              "seconds": train["seconds"], "test_accuracy": train["test_accuracy"]}), flush=True)
            seconds.append(train["seconds"])
        grade = grading_seconds()
        print(json.dumps({**grade, "round": round_}), flush=True)
        graded.append(grade["seconds"])
    print(json.dumps({"setting": "ratio", "grading_over_training": round(sum(graded) / sum(trained), 2),
                      "per_round": [round(g / t, 2) for g, t in zip(graded, trained)],
                      "grading_threads_training_over_training": round(sum(one_thread) / sum(trained), 2)}))


if __name__ == "__main__":
    main()
