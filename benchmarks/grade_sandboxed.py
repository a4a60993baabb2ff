"""What the sandbox costs: grading one correct submission against training its model, in one run.

Prints two JSON lines per round and the ratio of the totals: the seconds the fast path takes to
train the reference solution's model (in a fresh process, as a grader would), and the seconds
``grade_notebooks`` takes to grade the same solution in the sandbox, from the notebook to the
report (start-up of the child, probes, training, artifacts, checks). Training and grading
alternate, two rounds by default. The issue's goal: grading ≤ 1.2 × training.

    .venv/bin/python benchmarks/grade_sandboxed.py
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOK = ROOT / "tests" / "submissions" / "passes_all.ipynb"


def training_seconds() -> dict:
    child = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "train_reference.py"), "--one", "fast"],
        capture_output=True,
        text=True,
        check=True,
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
    trained, graded = [], []
    for round_ in range(1, args.rounds + 1):
        train = training_seconds()
        print(json.dumps({"setting": "train_fast_path", "round": round_, "seconds": train["seconds"],
                          "test_accuracy": train["test_accuracy"]}), flush=True)
        grade = grading_seconds()
        print(json.dumps({**grade, "round": round_}), flush=True)
        trained.append(train["seconds"])
        graded.append(grade["seconds"])
    print(json.dumps({"setting": "ratio", "grading_over_training": round(sum(graded) / sum(trained), 2),
                      "per_round": [round(g / t, 2) for g, t in zip(graded, trained)]}))


if __name__ == "__main__":
    main()
