"""How much faster two grading workers can be on this machine: one training alone against two at once.

Each sandbox trains on one thread (``autograder.sandbox.launch.GRADING_THREADS``). Two trainings running
side by side on two cores each take longer than one alone; their ratio caps what ``--workers 2``
can gain over ``--workers 1`` (``benchmarks/grade_batch.py``). The arithmetic is not what limits it
(two single-thread matrix products side by side run as fast as one alone) but work off the training
thread: the fast path runs the per-epoch validation pass in one XLA program, so that no ``tf.data``
threads compete for the second core; XLA's own helper threads (about 5 % of a core) remain.
Prints one JSON line per way and the ceiling, in one run:

    .venv/bin/python benchmarks/parallel_ceiling.py             # 10 epochs, about a minute
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def trainings_at_once(count: int, epochs: int) -> list[float]:
    from autograder.sandbox.launch import GRADING_THREADS

    threads = {
        name: str(GRADING_THREADS) for name in ("TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS", "OMP_NUM_THREADS")
    }
    env = {**os.environ, **threads, "TF_CPP_MIN_LOG_LEVEL": "3"}
    command = [
        sys.executable, str(ROOT / "benchmarks" / "train_reference.py"), "--one", "fast", "--epochs", str(epochs)
    ]
    children = [subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
                for _ in range(count)]
    return [json.loads(child.communicate()[0].strip().splitlines()[-1])["seconds"] for child in children]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=10)
    args = parser.parse_args()
    alone = trainings_at_once(1, args.epochs)[0]
    print(json.dumps({"way": "one training alone", "epochs": args.epochs, "seconds": alone}), flush=True)
    pair = trainings_at_once(2, args.epochs)
    print(json.dumps({"way": "two trainings at once", "epochs": args.epochs, "seconds": pair}), flush=True)
    slowdown = sum(pair) / len(pair) / alone
    print(json.dumps({"way": "ratios", "slowdown_side_by_side": round(slowdown, 2),
                      "ceiling_for_two_workers": round(2 / slowdown, 2)}))


if __name__ == "__main__":
    main()
