"""Grade a class of 100 made from the test submissions, as an instructor would, and print the figures.

The class is in nbgrader's layout (``submitted/<student>/fashion_mnist/fashion_mnist_classifier.ipynb``):
60 correct submissions in the correct styles of tests/submissions (string, function or object loss,
optimizer object, ``Flatten(input_shape=...)``, ``model.add``, other normalizations...) and 40 with
the mistakes, each style repeated in turn. It is graded by the command line with ``--workers 2``, and
the script prints one JSON line: the total seconds, seconds per submission, the trainings the
kit's trainers actually ran (the rest were replayed), the scores' spread, the largest process's
peak memory (any sandbox or trainer) and the machine's peak memory in use above what it used before.

    .venv/bin/python benchmarks/grade_class.py [--size 100] [--workers 2]
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SUBMISSIONS = ROOT / "tests" / "submissions"


def expected_score(name: str) -> int:
    return json.loads((SUBMISSIONS / f"{name}.expected.json").read_text())["score"]


def memory_in_use() -> int:
    fields = dict(line.split(":", 1) for line in Path("/proc/meminfo").read_text().splitlines())
    return (int(fields["MemTotal"].split()[0]) - int(fields["MemAvailable"].split()[0])) * 1024


class PeakMemory(threading.Thread):
    def __init__(self):
        super().__init__(daemon=True)
        self.baseline = memory_in_use()
        self.peak = self.baseline
        self.running = True

    def run(self):
        while self.running:
            self.peak = max(self.peak, memory_in_use())
            time.sleep(0.5)


def make_class(folder: Path, size: int) -> dict[str, str]:
    names = sorted(path.stem for path in SUBMISSIONS.glob("*.ipynb"))
    correct = [name for name in names if expected_score(name) == 100]
    wrong = [name for name in names if expected_score(name) < 100]
    n_correct = round(size * 0.6)
    chosen = (
        [correct[i % len(correct)] for i in range(n_correct)]
        + [wrong[i % len(wrong)] for i in range(size - n_correct)]
    )
    students = {}
    for index, name in enumerate(chosen):
        student = f"student{index:03d}"
        target = folder / "submitted" / student / "fashion_mnist" / "fashion_mnist_classifier.ipynb"
        target.parent.mkdir(parents=True)
        shutil.copy(SUBMISSIONS / f"{name}.ipynb", target)
        students[student] = name
    return students


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size", type=int, default=100)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="grade-class-"))
    try:
        students = make_class(folder, args.size)
        monitor = PeakMemory()
        monitor.start()
        started = time.monotonic()
        subprocess.run(
            [sys.executable, "-m", "autograder", "grade", str(folder / "submitted"), "--workers", str(args.workers),
             "--results", str(folder / "results"), "--json", str(folder / "grades.json")],
            check=True, stdout=subprocess.DEVNULL,
        )
        seconds = time.monotonic() - started
        monitor.running = False
        graded = json.loads((folder / "grades.json").read_text())
        stored = [json.loads(path.read_text()) for path in (folder / "results").glob("*.json")]
        # The copies of one style: the first trains, the others replay it. More than one that trains lost reuse.
        copies_training: dict[str, int] = {}
        for result in stored:
            if result["usage"].get("trainings_run", 0):
                style = students[Path(result["report"]["submission"]).parent.parent.name]
                copies_training[style] = copies_training.get(style, 0) + 1
        wrong_scores = [
            {"style": style, "score": entry["score"], "expected": expected_score(style),
             "failing": {check["id"]: check["message"][:200] for check in entry["checks"] if not check["passed"]}}
            for entry in graded
            for style in [students[Path(entry["submission"]).parent.parent.name]]
            if entry["score"] != expected_score(style)
        ]
        print(json.dumps({
            "submissions": len(graded),
            "workers": args.workers,
            "seconds": round(seconds, 1),
            "seconds_per_submission": round(seconds / len(graded), 2),
            "trainings_run": sum(result["usage"].get("trainings_run", 0) for result in stored),
            # Trained, not kept for replays (a bound of cache.py or a full disk): a copy trains again.
            "trainings_not_stored": sum(result["usage"].get("trainings_run", 0) - result["usage"].get(
                "trainings_stored", 0) for result in stored),
            "styles_whose_copies_trained_more_than_once": {
                style: count for style, count in sorted(copies_training.items()) if count > 1},
            "scores_not_as_expected": wrong_scores,
            "largest_process_peak_mib": round(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024),
            "machine_peak_in_use_mib": round((monitor.peak - monitor.baseline) / 2**20),
        }), flush=True)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
