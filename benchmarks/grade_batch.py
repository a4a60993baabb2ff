"""Grade a batch of 8 submissions three ways and print the figures, in one run (issue: class grading).

A batch of copies and variants of the reference is graded by `autograder grade --workers 1`, by
`--workers 2`, and by plain `nbgrader autograde` on a temporary course. Prints one JSON line per way:
total seconds, seconds per submission, and the peak RSS of the largest process it started.

    .venv/bin/python benchmarks/grade_batch.py            # about 45 minutes on 2 cores
    .venv/bin/python benchmarks/grade_batch.py --skip-nbgrader
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SUBMISSIONS = ROOT / "tests" / "submissions"
BATCH = ["passes_all"] * 4 + ["loss_as_function", "optimizer_as_object", "adam_instead_of_sgd", "ten_epochs_only"]


def make_batch(folder: Path) -> list[Path]:
    paths = []
    for index, name in enumerate(BATCH):
        target = folder / "submitted" / f"student{index}" / "fashion_mnist" / "fashion_mnist_classifier.ipynb"
        target.parent.mkdir(parents=True)
        shutil.copy(SUBMISSIONS / f"{name}.ipynb", target)
        paths.append(target)
    return paths


def timed(command: list[str], cwd: Path) -> tuple[float, float]:
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    started = time.perf_counter()
    subprocess.run(command, cwd=cwd, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    seconds = time.perf_counter() - started
    peak_mib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024  # largest child so far
    return seconds, peak_mib


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--skip-nbgrader", action="store_true")
    args = parser.parse_args()
    figures = {}
    with tempfile.TemporaryDirectory() as work:
        course = Path(work)
        make_batch(course)
        for workers in (1, 2):
            seconds, peak = timed(
                [sys.executable, "-m", "autograder", "grade", "submitted", "--workers", str(workers),
                 "--results", f"results-{workers}"],
                course,
            )
            figures[workers] = seconds
            print(json.dumps({"way": f"autograder --workers {workers}", "submissions": len(BATCH),
                              "seconds": round(seconds, 1), "seconds_per_submission": round(seconds / len(BATCH), 1),
                              "peak_rss_mib_largest_process": round(peak)}), flush=True)
        print(json.dumps({"way": "ratio", "workers_2_speedup": round(figures[1] / figures[2], 2)}), flush=True)
        if not args.skip_nbgrader:
            shutil.copytree(ROOT / "solutions", course / "solutions")
            shutil.copy(ROOT / "nbgrader_config.py", course / "nbgrader_config.py")
            nbgrader = [sys.executable, "-m", "nbgrader"]
            db = f"--CourseDirectory.db_url=sqlite:///{course / 'gradebook.db'}"
            subprocess.run([*nbgrader, "generate_assignment", "fashion_mnist", "--force", db], cwd=course, check=True,
                           capture_output=True, env={**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"})
            for index in range(len(BATCH)):
                subprocess.run([*nbgrader, "db", "student", "add", f"student{index}", db], cwd=course, check=True,
                               capture_output=True)
            seconds, peak = timed([*nbgrader, "autograde", "fashion_mnist", db], course)
            print(json.dumps({"way": "nbgrader autograde", "submissions": len(BATCH), "seconds": round(seconds, 1),
                              "seconds_per_submission": round(seconds / len(BATCH), 1),
                              "peak_rss_mib_largest_process": round(peak)}), flush=True)
            print(json.dumps({"way": "ratio", "kit_workers_2_over_nbgrader": round(seconds / figures[2], 2)}), flush=True)


if __name__ == "__main__":
    main()
