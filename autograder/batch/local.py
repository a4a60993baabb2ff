"""Grading a batch on this machine: ``grade_notebooks``, one submission at a time or several at once.

Each result is written to the results folder, atomically, as soon as it is known; a batch run
again after the grader was killed picks up where it stopped (autograder.batch.store). A
submission that cannot be read, crashes its process, runs out of time or memory, gets ``error``
and score 0, and the others are still graded. With a scheduler's address the same batch is graded
on a Dask cluster instead (autograder.batch.cluster), with the same options.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path
from typing import Callable, Iterable

from autograder.batch.progress import Progress
from autograder.batch.shared import Batch, open_batch
from autograder.batch.steps import grade_submission
from autograder.batch.store import store_report, stored_report
from autograder.errors import AutograderError
from autograder.judge.report import GradeReport


def expand_paths(paths: Iterable[str | Path]) -> list[Path]:
    """Files as given; folders become the notebooks inside them (checkpoints and links left out:
    a link is no student's notebook, whatever it names), sorted."""
    found: list[Path] = []
    for path in map(Path, paths):
        if path.is_dir():
            found.extend(sorted(
                p for p in path.rglob("*.ipynb")
                if ".ipynb_checkpoints" not in p.parts and not p.is_symlink() and p.is_file()
            ))
        else:
            found.append(path)
    return found


def grade_notebooks(
    paths: Iterable[str | Path],
    *,
    data_dir=None,
    out=None,
    show: Callable[[GradeReport], str] | None = None,
    sandbox: bool = True,
    limits=None,
    results: Path | None = None,
    private: Iterable[Path] = (),
    workers: int = 1,
    scheduler: str | None = None,
    reuse: bool = True,
) -> list[GradeReport]:
    """Grade every notebook; with ``results``, store each result as it is known and skip those stored.

    ``out``: where the batch's progress goes, each finished report as ``show`` writes it.
    ``private``: more files the sandboxed code must not read (the gradebook being written).
    ``scheduler``: the address of a Dask scheduler to grade on instead of this machine.
    ``reuse``: replay a training the batch's trainers already ran from an identical description
    (autograder.trainer.service).
    """
    notebooks = expand_paths(paths)
    if not notebooks:
        raise AutograderError("no notebooks to grade: give .ipynb files or folders that hold them")
    if scheduler:
        from autograder.batch.cluster import grade_on_cluster

        progress = Progress(len(notebooks), out, show)
        reports = grade_on_cluster(notebooks, scheduler, data_dir=data_dir, limits=limits, sandbox=sandbox,
                                   reuse=reuse, results=results, progress=progress)
    else:
        hide = (
            {p.resolve().parent for p in notebooks}
            | ({results.resolve()} if results else set())
            | {Path(p).resolve() for p in private if Path(p).exists()}
        )
        with open_batch(data_dir=data_dir, limits=limits, sandbox=sandbox, reuse=reuse, hide=hide) as batch:
            progress = Progress(len(notebooks), out, show)  # from here: its estimates leave the set-up out
            announce(batch, progress)
            reports = grade_here(notebooks, batch, results, progress, workers)
    progress.close()
    return reports


def announce(batch: Batch, progress: Progress) -> None:
    """The batch's own lines: its sandbox, and the folders of killed graders it removed."""
    from autograder.sandbox.method import describe_isolation
    from autograder.sandbox.scratch import remove_left_by_dead_graders

    if progress.out and batch.sandbox:
        progress.say(f"sandbox: {describe_isolation()}")
    count, freed = remove_left_by_dead_graders()
    if count:
        progress.say(f"removed {count} temporary folder{'s' * (count > 1)} ({freed / 2**20:.0f} MiB) left by "
                     "graders that were killed")


def grade_here(notebooks: list[Path], batch: Batch, results: Path | None, progress: Progress,
               workers: int) -> list[GradeReport]:
    """Each notebook in turn, or ``workers`` at once; reports in the order given."""

    def grade_one(path: Path) -> GradeReport:
        if batch.stopping:
            raise KeyboardInterrupt
        report = stored_report(results, path)
        if report is not None:
            return report
        progress.started(path)
        report = grade_submission(path, batch)
        if batch.stopping:  # its sandbox was killed by the grader's stop, not by its own fault
            raise KeyboardInterrupt
        store_report(results, path, report)
        return report

    if workers <= 1:
        reports = []
        for path in notebooks:
            reports.append(grade_one(path))
            progress.finished(reports[-1])
        return reports
    return grade_in_pool(notebooks, grade_one, batch, progress, workers)


def grade_in_pool(notebooks: list[Path], grade_one, batch: Batch, progress: Progress,
                  workers: int) -> list[GradeReport]:
    from autograder.batch.order import start_order

    pool = ThreadPoolExecutor(max_workers=workers)
    try:
        # The longest expected first, so that no long one starts last while the other workers idle.
        futures = {index: pool.submit(grade_one, notebooks[index]) for index, _ in start_order(notebooks)}
        for future in as_completed(futures.values()):
            progress.finished(future.result())
        return [futures[index].result() for index in range(len(notebooks))]  # in the order given
    except BaseException:  # Ctrl-C or SIGTERM: stop now, not after every queued submission
        from autograder.sandbox.launch import stop_running_sandboxes

        batch.stop.set()
        pool.shutdown(wait=False, cancel_futures=True)
        stop_running_sandboxes(batch.stop)
        raise
    finally:
        pool.shutdown(wait=True)
