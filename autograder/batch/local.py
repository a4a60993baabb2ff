"""Grading a batch on this machine: ``grade_notebooks``, one submission at a time or several at once.

Each result is written to the results folder, atomically, as soon as it is known; a batch run
again after the grader was killed picks up where it stopped (autograder.batch.store). A
submission that cannot be read, crashes its process, runs out of time or memory, gets ``error``
and score 0, and the others are still graded. With a scheduler's address the same batch is graded
on a Dask cluster instead (autograder.batch.cluster), with the same options.

Every submission is keyed by its student (``student_key``), found here where the paths are
expanded, and every per-submission output goes to the place ``output_place`` gives: nbgrader's
feedback layout, names made safe, and two submissions that would share a place refused before
anything is graded.
"""

from __future__ import annotations

import os
import re
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path, PurePosixPath
from typing import Callable, Iterable

from autograder.assignment import ASSIGNMENT_ID
from autograder.batch.progress import Progress
from autograder.batch.shared import Batch, open_batch
from autograder.batch.steps import grade_submission
from autograder.batch.store import store_report, stored_report
from autograder.errors import AutograderError
from autograder.judge.report import GradeReport

# nbgrader's folder of collected submissions: submitted/<student>/<assignment>/<notebook>.ipynb.
SUBMITTED = "submitted"
SAFE_NAME_CHARS = 60  # a name of up to 60 word characters is at most 240 bytes of UTF-8: it fits a file name


def notebooks_in(folder: Path) -> list[Path]:
    """The notebooks inside a folder, sorted (checkpoints and links left out: a link is no
    student's notebook, whatever it names)."""
    return sorted(
        p for p in folder.rglob("*.ipynb")
        if ".ipynb_checkpoints" not in p.parts and not p.is_symlink() and p.is_file()
    )


def nbgrader_place(path: str | Path) -> tuple[str, str] | None:
    """``(student, assignment)`` for a notebook in nbgrader's layout, else None."""
    parts = Path(path).absolute().parts
    if len(parts) >= 5 and parts[-4] == SUBMITTED:
        return parts[-3], parts[-2]
    return None


def student_key(path: Path, root: Path | None = None) -> str:
    """Who a submission belongs to, the key of its every output: in nbgrader's layout the student's
    folder; else the path relative to ``root`` (the folder graded) without ``.ipynb``; with no root, the stem."""
    place = nbgrader_place(path)
    if place:
        return place[0]
    if root is None:
        return path.stem
    relative = path.relative_to(root)
    return (relative.parent / relative.stem).as_posix()


def expand_submissions(paths: Iterable[str | Path]) -> list[tuple[Path, str]]:
    """Each notebook to grade with its student key, in the order given: a folder's notebooks keyed
    by their path inside it; files given by their path inside the deepest folder holding them all
    (one file: its stem), so that ``class/*/hw.ipynb`` keys each by its own folder."""
    paths = [Path(path) for path in paths]
    files = [path.absolute() for path in paths if not path.is_dir()]
    files_root = Path(os.path.commonpath([file.parent for file in files])) if files else None
    found: list[tuple[Path, str]] = []
    for path in paths:
        if path.is_dir():
            found.extend((notebook, student_key(notebook, path)) for notebook in notebooks_in(path))
        else:
            found.append((path, student_key(path.absolute(), files_root)))
    return found


def expand_paths(paths: Iterable[str | Path]) -> list[Path]:
    """Files as given; folders become the notebooks inside them, sorted."""
    return [path for path, _ in expand_submissions(paths)]


def safe_name(name: str) -> str:
    """``name`` as one file name that stays inside its folder: letters, digits and ``_ . @ + -`` kept,
    anything else (a slash, a control character, undecodable bytes) ``_``; never hidden, ``.`` or ``..``."""
    safe = re.sub(r"[^\w.@+-]", "_", name)[:SAFE_NAME_CHARS]
    return safe if safe and not safe.startswith(".") else f"_{safe}"


def output_place(student: str, submission: str | Path) -> PurePosixPath:
    """Where a submission's outputs go inside an output folder: ``<student>/<assignment>/<notebook stem>``,
    nbgrader's feedback layout, each part a safe name (a relative key's folders stay folders)."""
    place = nbgrader_place(submission)
    assignment = place[1] if place else ASSIGNMENT_ID
    parts = [safe_name(part) for part in student.split("/")]
    return PurePosixPath(*parts, safe_name(assignment), safe_name(Path(submission).stem))


def student_of(report: GradeReport) -> str:
    """The report's student: as the batch found it, or (a report made elsewhere) from its path alone."""
    return report.student or student_key(Path(report.submission))


def report_place(report: GradeReport) -> PurePosixPath:
    return output_place(student_of(report), report.submission)


def refuse_collisions(submissions: list[tuple[Path, str]]) -> None:
    """Two submissions whose outputs would share a place: an error before anything is graded, never
    one page silently overwriting another. Case is ignored, as some file systems do."""
    seen: dict[str, Path] = {}
    for path, student in submissions:
        place = output_place(student, path)
        other = seen.setdefault(str(place).casefold(), path)
        if other != path and other.resolve() != path.resolve():
            raise AutograderError(
                f"{other} and {path} are both student {student!r}'s notebook {Path(path).name!r}, so their feedback "
                f"and results would be written to the same place ({place}): grade them in separate runs with separate "
                "output folders, or give the folders that hold them so that each is keyed by its path"
            )


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
    config=None,
) -> list[GradeReport]:
    """Grade every notebook; with ``results``, store each result as it is known and skip those stored.

    ``out``: where the batch's progress goes, each finished report as ``show`` writes it.
    ``private``: more files the sandboxed code must not read (the gradebook being written).
    ``scheduler``: the address of a Dask scheduler to grade on instead of this machine.
    ``reuse``: replay a training the batch's trainers already ran from an identical description
    (autograder.trainer.service).
    ``config``: the instructor's points and pass mark (autograder.config.Config; None: the defaults).
    """
    submissions = expand_submissions(paths)
    notebooks = [path for path, _ in submissions]
    if not notebooks:
        raise AutograderError("no notebooks to grade: give .ipynb files or folders that hold them")
    refuse_collisions(submissions)
    if scheduler:
        from autograder.batch.cluster import grade_on_cluster

        progress = Progress(len(notebooks), out, show)
        reports = grade_on_cluster(notebooks, scheduler, data_dir=data_dir, limits=limits, sandbox=sandbox,
                                   reuse=reuse, results=results, progress=progress, config=config)
    else:
        hide = (
            {p.resolve().parent for p in notebooks}
            | ({results.resolve()} if results else set())
            | {Path(p).resolve() for p in private if Path(p).exists()}
        )
        with open_batch(data_dir=data_dir, limits=limits, sandbox=sandbox, reuse=reuse, hide=hide,
                        config=config) as batch:
            progress = Progress(len(notebooks), out, show)  # from here: its estimates leave the set-up out
            announce(batch, progress)
            reports = grade_here(notebooks, batch, results, progress, workers)
    progress.close()
    for report, (_, student) in zip(reports, submissions):
        report.student = student
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
        report = stored_report(results, path, batch.config)
        if report is not None:
            return report
        progress.started(path)
        report = grade_submission(path, batch)
        if batch.stopping:  # its sandbox was killed by the grader's stop, not by its own fault
            raise KeyboardInterrupt
        store_report(results, path, report, batch.config)
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
