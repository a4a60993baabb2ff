"""What keeping each grading thread's trainer warm saves: a batch graded with warm trainers and with
a new trainer per submission, side by side.

The batch is N copies of the reference solution in nbgrader's layout, so the first training is run
and every later one is replayed from the trainers' cache: what is left is each submission's fixed
cost (the child's start, the probes, the trainer's start where it has one, the judge), which is
what a warm trainer changes. Each setting runs in a fresh process (``--one``), in turn, ``--rounds``
times, so that a slow minute of a shared machine lands on both. Prints a JSON line per run (total
seconds, median seconds of a replayed submission, trainers started, scores) and one with the ratios.

    .venv/bin/python benchmarks/warm_trainers.py [--copies 8] [--workers 2] [--rounds 1]
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
REFERENCE = ROOT / "tests" / "submissions" / "passes_all.ipynb"
SETTINGS = ("new_each", "warm")


def one(setting: str, folder: Path, workers: int) -> dict:
    from autograder.trainer import desk

    if setting == "new_each":
        desk.WARM_USES = 1  # each trainer is closed after its first submission
    starts = []
    start = desk.TrainerProcess.__init__

    def counted(self, *args, **kwargs):
        starts.append(1)
        start(self, *args, **kwargs)

    desk.TrainerProcess.__init__ = counted
    from autograder.batch.local import grade_notebooks

    notebooks = sorted(folder.glob("submitted/*/fashion_mnist/*.ipynb"))
    started = time.monotonic()
    reports = grade_notebooks(notebooks, workers=workers)
    seconds = time.monotonic() - started
    replayed = [report.usage["seconds"] for report in reports if report.usage.get("trainings_run") == 0]
    return {
        "setting": setting,
        "submissions": len(reports),
        "workers": workers,
        "seconds": round(seconds, 1),
        "replayed_median_seconds": round(statistics.median(replayed), 1) if replayed else None,
        "trainers_started": len(starts),
        "scores": sorted({report.score for report in reports}),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--copies", type=int, default=8)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--one", nargs=2, metavar=("SETTING", "FOLDER"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(one(args.one[0], Path(args.one[1]), args.workers)), flush=True)
        return
    folder = Path(tempfile.mkdtemp(prefix="warm-trainers-"))
    try:
        for index in range(args.copies):
            target = folder / "submitted" / f"student{index:02d}" / "fashion_mnist" / "fashion_mnist_classifier.ipynb"
            target.parent.mkdir(parents=True)
            shutil.copy(REFERENCE, target)
        totals = {setting: 0.0 for setting in SETTINGS}
        replayed = {setting: [] for setting in SETTINGS}
        for _ in range(args.rounds):
            for setting in SETTINGS:
                result = subprocess.run(
                    [sys.executable, __file__, "--one", setting, str(folder), "--workers", str(args.workers)],
                    check=True, capture_output=True, text=True,
                )
                figures = json.loads(result.stdout.strip().splitlines()[-1])
                print(json.dumps(figures), flush=True)
                totals[setting] += figures["seconds"]
                replayed[setting].append(figures["replayed_median_seconds"])
        print(json.dumps({
            "new_each_over_warm_total": round(totals["new_each"] / totals["warm"], 2),
            "new_each_over_warm_replayed": round(
                statistics.median(replayed["new_each"]) / statistics.median(replayed["warm"]), 2),
        }), flush=True)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
