"""Grading on a Dask cluster: the same sandboxed grading, one submission per task, on any worker.

Each task carries the notebook's bytes (workers need not share the instructor's disk) and runs the
whole single-machine path on its worker: load the data there, sanitize, sandbox, judge. Workers
therefore need the kit installed and Fashion-MNIST available, as a grading machine does. Results
come back as the contract's JSON and are stored by the instructor's process, atomically, as each
arrives, so a rerun after an interruption resumes as it does locally.
"""

from __future__ import annotations

import shutil
from pathlib import Path


def grade_remotely(content: bytes, name: str, limits, data_dir: str | None) -> dict:
    """Runs on a Dask worker: grade one notebook given as bytes; returns plain data."""
    from autograder.batch.grading import grade_notebooks
    from autograder.sandbox.scratch import new_folder

    folder = new_folder("task")
    try:
        path = folder / Path(name).name
        path.write_bytes(content)
        report = grade_notebooks([path], data_dir=data_dir, limits=limits)[0]
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    report.submission = name
    return report.payload()


def grade_on_cluster(notebooks: list[Path], scheduler: str, *, data_dir=None, limits=None, grade_one_stored, store, progress):
    """Submit every notebook not already graded to the cluster; collect reports in the order given."""
    from distributed import Client, as_completed

    from autograder.batch.order import start_order
    from autograder.batch.grading import GradeReport, ungraded

    reports: dict[Path, GradeReport] = {}
    with Client(scheduler) as client:
        futures = {}
        # The longest expected first, in the queue and by Dask's priority (autograder.batch.order).
        for index, estimate in start_order(notebooks):
            path = notebooks[index]
            stored = grade_one_stored(path)
            if stored is not None:
                reports[path] = stored
                progress.finished(stored)
                continue
            try:
                content = path.read_bytes()
            except OSError as error:
                reports[path] = ungraded(path, f"cannot be read ({error.strerror})")
                continue
            progress.started(path)
            future = client.submit(
                grade_remotely, content, str(path), limits, str(data_dir) if data_dir else None, pure=False,
                priority=round(estimate),
            )
            futures[future] = path
        for future in as_completed(futures):
            path = futures[future]
            try:
                payload = future.result()
                report = GradeReport.from_payload(payload)
            except Exception as error:  # a worker lost or crashed: this submission's fault, as a result
                report = ungraded(path, f"the cluster could not grade it: {type(error).__name__}: {error}")
            store(path, report)
            reports[path] = report
            progress.finished(report)
    return [reports[path] for path in notebooks]
