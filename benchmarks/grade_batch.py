"""Grade a batch of 8 submissions five ways and print the figures, in one run (issue: class grading).

A batch of copies and variants of the reference is graded by `autograder grade --workers 1` and
`--workers 2`, both training every submission (`--no-reuse`), by `--workers 2` reusing the trainers' own
identical trainings, by `--workers 2 --no-reuse` starting the submissions in the order given instead
of the longest expected first (to measure what that order gains), and by plain `nbgrader autograde`
on a temporary course. Prints one JSON line per way (total seconds, seconds per submission, peak RSS
of the largest process it started; for the kit also each submission's seconds and its sandbox's peak
memory, as the grader measured them) and the ratios.

    .venv/bin/python benchmarks/grade_batch.py            # about 38 minutes on 2 cores
    .venv/bin/python benchmarks/grade_batch.py --skip-nbgrader
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SUBMISSIONS = ROOT / "tests" / "submissions"
# For comparison only: two workers starting the submissions in the order given, to measure what
# starting the longest expected first (autograder.batch.order) gains.
IN_ORDER_GIVEN = "autograder --workers 2 --no-reuse, in the order given"
STARTS_IN_ORDER_GIVEN = (
    "import sys, autograder.batch.order as order; "
    "order.start_order = lambda paths, **_: [(index, 0.0) for index in range(len(paths))]; "
    "from autograder.cli import main; sys.exit(main())"
)
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
    """Seconds, and the peak RSS of the largest process the command ran (the grader or a sandbox)."""
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    # A fresh process per way, so that its peak memory is its own.
    measure = (
        "import resource, subprocess, sys, time; started = time.perf_counter(); "
        "subprocess.run(sys.argv[1:], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL); "
        "print(time.perf_counter() - started, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)"
    )
    output = subprocess.run([sys.executable, "-c", measure, *command], cwd=cwd, env=env, check=True,
                            capture_output=True, text=True).stdout.split()
    return float(output[0]), float(output[1]) / 1024


def figures(way: str, seconds: float, peak: float, results: Path | None = None) -> dict:
    line = {"way": way, "submissions": len(BATCH), "seconds": round(seconds, 1),
            "seconds_per_submission": round(seconds / len(BATCH), 1), "peak_rss_mib_largest_process": round(peak)}
    if results is not None:
        # What the grader measured for each submission: its seconds and its sandbox's peak memory.
        each = []
        for path in results.glob("*.json"):
            stored = json.loads(path.read_text())
            student = Path(stored["report"]["submission"]).parts[-3]  # submitted/STUDENT/fashion_mnist/…
            each.append({"student": student, "notebook": BATCH[int(student.removeprefix("student"))],
                         "seconds": stored["usage"]["seconds"],
                         "sandbox_peak_mib": stored["usage"]["sandbox_peak_memory_mib"]})
        line["each"] = sorted(each, key=lambda entry: entry["student"])
        line["sandbox_peak_mib_max"] = max(entry["sandbox_peak_mib"] for entry in each)
    return line


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--skip-nbgrader", action="store_true")
    args = parser.parse_args()
    seconds, busy = {}, {}
    with tempfile.TemporaryDirectory() as work:
        course = Path(work)
        make_batch(course)
        ways = {
            "autograder --workers 1 --no-reuse": ["--workers", "1", "--no-reuse"],
            "autograder --workers 2 --no-reuse": ["--workers", "2", "--no-reuse"],
            "autograder --workers 2": ["--workers", "2"],
            IN_ORDER_GIVEN: ["--workers", "2", "--no-reuse"],
        }
        for index, (way, options) in enumerate(ways.items()):
            if way == IN_ORDER_GIVEN:
                grader = [sys.executable, "-c", STARTS_IN_ORDER_GIVEN]
            else:
                grader = [sys.executable, "-m", "autograder"]
            seconds[way], peak = timed(
                [*grader, "grade", "submitted", *options, "--results", f"results-{index}"], course
            )
            line = figures(way, seconds[way], peak, course / f"results-{index}")
            busy[way] = sum(entry["seconds"] for entry in line["each"])
            print(json.dumps(line), flush=True)
        one, two, reuse, in_order = seconds.values()
        busy_one, busy_two, _, busy_in_order = busy.values()
        # Where two workers lose against the ideal 2x: each submission taking longer beside another
        # (the slowdown), and the time the two were not both grading (the set-up, and the end of
        # the batch, when one worker has nothing left to start).
        print(json.dumps({"way": "ratios", "workers_2_speedup": round(one / two, 2),
                          "per_submission_slowdown_side_by_side": round(busy_two / busy_one, 3),
                          "workers_2_idle_worker_seconds": round(2 * two - busy_two, 1),
                          "reuse_saves_fraction": round(1 - reuse / two, 2),
                          "workers_2_speedup_in_order_given": round(one / in_order, 2),
                          "in_order_given_idle_worker_seconds": round(2 * in_order - busy_in_order, 1)}), flush=True)
        if not args.skip_nbgrader:
            shutil.copytree(ROOT / "solutions", course / "solutions")
            shutil.copy(ROOT / "nbgrader_config.py", course / "nbgrader_config.py")
            nbgrader = [sys.executable, "-m", "nbgrader"]
            db = f"--CourseDirectory.db_url=sqlite:///{course / 'gradebook.db'}"
            env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
            subprocess.run([*nbgrader, "generate_assignment", "fashion_mnist", "--force", db], cwd=course, check=True,
                           capture_output=True, env=env)
            for index in range(len(BATCH)):
                subprocess.run([*nbgrader, "db", "student", "add", f"student{index}", db], cwd=course, check=True,
                               capture_output=True, env=env)
            nbgrader_seconds, peak = timed([*nbgrader, "autograde", "fashion_mnist", db], course)
            print(json.dumps(figures("nbgrader autograde", nbgrader_seconds, peak)), flush=True)
            print(json.dumps({"way": "ratios",
                              "kit_workers_2_over_nbgrader": round(nbgrader_seconds / two, 2),
                              "kit_workers_2_reuse_over_nbgrader": round(nbgrader_seconds / reuse, 2)}), flush=True)


if __name__ == "__main__":
    main()
