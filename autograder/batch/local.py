"""Grading a batch on this machine: ``grade_notebooks``, one submission at a time or several at once.

Each result is written to the results folder, atomically, as soon as it is known; a batch run
again after the grader was killed picks up where it stopped (autograder.batch.store). A
submission that cannot be read, crashes its process, runs out of time or memory, gets ``error``
and score 0, and the others are still graded. With a scheduler's address the same batch is graded
on a Dask cluster instead (autograder.batch.cluster), with the same options.

Every submission is keyed by its student (``student_key``), found here where the paths are
expanded, and every per-submission output goes to the place ``report_places`` gives: nbgrader's
feedback layout, each name made safe one-to-one (``safe_name``). Submissions that would still share
a place are graded, named in a warning, and get no per-submission outputs (the writers say so).
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import re
import unicodedata
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path, PurePosixPath
from typing import Callable, Iterable

from autograder.assignment import ASSIGNMENT_ID, SUBMITTED
from autograder.batch.progress import Progress
from autograder.batch.shared import Batch, open_batch
from autograder.batch.steps import grade_submission, unreadable
from autograder.batch.store import run_settings, store_report, stored_report
from autograder.errors import AutograderError, MemoryShareExceeded, NotebookError
from autograder.files import files_below, real_path
from autograder.judge.report import GradeReport
from autograder.limits import Limits
from autograder.sandbox.slots import memory_share
from autograder.submission.notebook import read_submitted_bytes
from autograder.text import terminal_text
from autograder.trainer.cache import kept_folder

SAFE_NAME_CHARS = 60  # a name of up to 60 word characters is at most 240 bytes of UTF-8: it fits a file name


MAX_FOLDER_DEPTH = 16  # below a folder graded: nbgrader's layout is 3 deep, a course's root a few more


def notebooks_in(folder: Path, left_out: list[Path] | None = None) -> list[Path]:
    """The notebooks inside a folder, sorted (checkpoints and links left out: a link is no
    student's notebook, whatever it names; so are folders below ``MAX_FOLDER_DEPTH``, into ``left_out``:
    every step after, from the student's key to the feedback's folders, would be as deep)."""
    return files_below(folder, ".ipynb", frozenset({".ipynb_checkpoints"}), MAX_FOLDER_DEPTH, left_out)


def owner_anchor(path: Path, root: Path) -> Path | None:
    """The ``submitted`` folder that names ``path``'s owner, at or above ``root`` (the folder graded), else
    ``root/submitted``. One inside a student's folder is theirs, never an anchor: graded on its own
    (``submitted/mallory/fashion_mnist/…/submitted/alice/…``, or ``submitted/submitted``), it would make
    its folders pass for classmates. So the outermost anchors, but for a course kept in a folder that
    happens to be named so (``/srv/submitted/ml101/submitted``): two levels below an anchor is no
    student's work (a student hands in ``submitted/<student>/<assignment>/``), so the inner one anchors."""
    anchor = None
    for folder in reversed([folder for folder in (root, *root.parents) if folder.name == SUBMITTED]):
        if anchor is None or len(folder.relative_to(anchor).parts) == 2:
            anchor = folder
    if anchor is not None:
        return anchor
    return root / SUBMITTED if path.is_relative_to(root / SUBMITTED) else None


def nbgrader_place(path: str | Path, student: str) -> tuple[str, str] | None:
    """``(student, assignment)`` for the notebook ``student_key`` keyed as ``student`` in nbgrader's layout
    ``submitted/<student>/<assignment>/<notebook>.ipynb``, else None."""
    parts = Path(path).absolute().parts
    if len(parts) >= 5 and parts[-4] == SUBMITTED and parts[-3] == student:
        return student, parts[-2]
    return None


def student_key(path: Path, root: Path | None = None) -> str:
    """Who a submission belongs to, the key of its every output. Under a ``submitted`` folder (``owner_anchor``)
    the student's folder: alone in nbgrader's layout, else followed by the path inside it, so that a layout
    nested in a student's folder stays theirs. Elsewhere the path relative to ``root`` (the folder graded;
    none: the notebook's own folder) without ``.ipynb``."""
    path = path.absolute()
    root = (root or path.parent).absolute()
    anchor = owner_anchor(path, root)
    relative = path.relative_to(anchor if anchor else root)
    if anchor and len(relative.parts) == 3:
        return relative.parts[0]
    return (relative.parent / relative.stem).as_posix()


def expand_submissions(paths: Iterable[str | Path], left_out: list[Path] | None = None) -> list[tuple[Path, str]]:
    """Each notebook to grade with its student key, in the order given: a folder's notebooks keyed
    by their path inside it; files given by their path inside the deepest folder holding them all
    (one file: its stem), so that ``class/*/hw.ipynb`` keys each by its own folder. Folders too deep
    to enter go to ``left_out``."""
    paths = [Path(path) for path in paths]
    files = [path.absolute() for path in paths if not path.is_dir()]
    files_root = Path(os.path.commonpath([file.parent for file in files])) if files else None
    found: list[tuple[Path, str]] = []
    for path in paths:
        if path.is_dir():
            found.extend((notebook, student_key(notebook, path)) for notebook in notebooks_in(path, left_out))
        else:
            found.append((path, student_key(path.absolute(), files_root)))
    return found


def expand_paths(paths: Iterable[str | Path]) -> list[Path]:
    """Files as given; folders become the notebooks inside them, sorted."""
    return [path for path, _ in expand_submissions(paths)]


HASH_CHARS = 12
LOOKS_HASHED = re.compile(rf"-[0-9a-f]{{{HASH_CHARS}}}$")


def folded(name: str) -> str:
    """``name`` as a case- and normalization-insensitive file system (macOS, Windows) may store it."""
    return unicodedata.normalize("NFC", unicodedata.normalize("NFC", name).casefold())


def safe_name(name: str, *, hashed: bool = False) -> str:
    """``name`` as one file name that stays inside its folder: letters, digits and ``_ . @ + -`` kept.
    A name that had to change (a slash, a control character, undecodable bytes, a leading dot, more
    than 60 characters), that looks like such a name, or ``hashed``, ends in a hash of the whole name:
    two names never share a safe name."""
    safe = re.sub(r"[^\w.@+-]", "_", name)
    if safe.startswith(".") or not safe:
        safe = f"_{safe}"
    if not hashed and safe == name and len(safe) <= SAFE_NAME_CHARS and not LOOKS_HASHED.search(folded(safe)):
        return safe
    digest = hashlib.sha256(name.encode("utf-8", "surrogatepass")).hexdigest()[:HASH_CHARS]
    return f"{safe[:SAFE_NAME_CHARS - HASH_CHARS - 1]}-{digest}"


def raw_place(student: str, submission: str | Path) -> tuple[str, ...]:
    """Where a submission's outputs go, before names are made safe: ``<student>/<assignment>/<notebook
    stem>``, nbgrader's feedback layout (a relative key's folders stay folders)."""
    place = nbgrader_place(submission, student)
    return (*student.split("/"), place[1] if place else ASSIGNMENT_ID, Path(submission).stem)


def safe_places(raws: Iterable[tuple[str, ...]]) -> dict[tuple[str, ...], PurePosixPath]:
    """Each raw place's safe place, one-to-one even where case is ignored: of names in one folder that
    fold to the same, the one already in lower case keeps its name (nbgrader's release_feedback finds it
    there) and the others get their hash."""
    places: dict[tuple[str, ...], PurePosixPath] = {}

    def assign(group: set[tuple[str, ...]], prefix: PurePosixPath, depth: int) -> None:
        names = {raw[depth] for raw in group if len(raw) > depth}
        safe = {name: safe_name(name) for name in names}
        by_fold: dict[str, set[str]] = {}
        for name in names:
            by_fold.setdefault(folded(safe[name]), set()).add(name)
        for clashing in (found for found in by_fold.values() if len(found) > 1):
            for name in clashing:
                if not safe[name] == name == folded(name):
                    safe[name] = safe_name(name, hashed=True)
        children: dict[str, set[tuple[str, ...]]] = {}
        for raw in group:
            if len(raw) == depth:
                places[raw] = prefix
            else:
                children.setdefault(folded(safe[raw[depth]]), set()).add(raw)
        for child in children.values():
            assign(child, prefix / safe[next(iter(child))[depth]], depth + 1)

    assign(set(raws), PurePosixPath(), 0)
    return places


def student_of(report: GradeReport) -> str:
    """The report's student: as the batch found it, or (a report made elsewhere) from its path alone."""
    return report.student or student_key(Path(report.submission))


def report_places(reports: list[GradeReport]) -> dict[int, PurePosixPath | None]:
    """Each report's place inside an output folder, by ``id``; None for those whose outputs would clash
    with another's (same place, or the same folder for nbgrader's receipts from another folder)."""
    return dict(zip(map(id, reports), submission_places([(r.submission, student_of(r)) for r in reports])))


def submission_places(submissions: list[tuple[str | Path, str]]) -> list[PurePosixPath | None]:
    raws = [raw_place(student, path) for path, student in submissions]
    safe = safe_places(raws)
    owners: dict[str, set[str]] = {}
    for (path, student), raw in zip(submissions, raws):
        source = Path(path).absolute()  # as given: where links lead is a student's to change
        owners.setdefault(folded(str(safe[raw])), set()).add(str(source))
        if nbgrader_place(path, student):  # its receipts go beside the page
            owners.setdefault(folded(str(safe[raw].parent)), set()).add(str(source.parent))
    clashes = {place for place, sources in owners.items() if len(sources) > 1}
    return [None if {folded(str(safe[raw])), folded(str(safe[raw].parent))} & clashes else safe[raw] for raw in raws]


def clashes_of(submissions: list[tuple[Path, str]]) -> list[Path]:
    """The submissions whose per-submission outputs would share a place with another's."""
    return [path for (path, _), place in zip(submissions, submission_places(submissions)) if place is None]


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
    trainings: Path | None = None,
    config=None,
) -> list[GradeReport]:
    """Grade every notebook; with ``results``, store each result as it is known and skip those stored.

    ``out``: where the batch's progress goes, each finished report as ``show`` writes it.
    ``private``: more files the sandboxed code must not read (the gradebook being written).
    ``scheduler``: the address of a Dask scheduler to grade on instead of this machine.
    ``reuse``: replay a training the batch's trainers already ran from an identical description (trainer.service).
    ``trainings``: a folder, the grader's own, of trainings kept from earlier runs on this machine: they
    are replayed too, and this run's are kept there.
    ``config``: the instructor's points and pass mark (autograder.config.Config; None: the defaults).
    """
    too_deep: list[Path] = []
    submissions = expand_submissions(paths, too_deep)
    notebooks = [path for path, _ in submissions]
    if not notebooks:
        raise AutograderError("no notebooks to grade: give .ipynb files or folders that hold them")
    clashing = clashes_of(submissions)
    if scheduler and trainings:
        raise AutograderError("trainings are kept on this machine only: grade on a cluster without --trainings")
    if scheduler:
        from autograder.batch.cluster import grade_on_cluster

        progress = Progress(len(notebooks), out, show)
        warn_of_clashes(clashing, progress, too_deep)
        reports = grade_on_cluster(notebooks, scheduler, data_dir=data_dir, limits=limits, sandbox=sandbox,
                                   reuse=reuse, results=results, progress=progress, config=config)
    else:
        if trainings:
            kept_folder(Path(trainings))
        limits, memory = memory_share(limits or Limits(), workers, per_worker=2 if sandbox else 1)
        hide = hidden_from_sandboxes(notebooks, results, trainings, private)
        with open_batch(data_dir=data_dir, limits=limits, sandbox=sandbox, reuse=reuse, hide=hide,
                        config=config, kept=Path(trainings) if trainings else None) as batch:
            progress = Progress(len(notebooks), out, show)  # from here: its estimates leave the set-up out
            announce(batch, progress, memory)
            warn_of_clashes(clashing, progress, too_deep)
            reports = grade_here(notebooks, batch, results, progress, workers, owners=owners_of(submissions))
    progress.close()
    for report, (_, student) in zip(reports, submissions):
        report.student = student
    return reports


def owners_of(submissions: list[tuple[Path, str]]) -> list[str]:
    """Who handed in each notebook, for the order they start in: under a ``submitted`` folder the student's
    folder, whatever lies inside it; elsewhere each notebook is its own."""
    return [student.split("/")[0] if SUBMITTED in path.absolute().parts else student for path, student in submissions]


def warn_of_clashes(clashing: list[Path], progress: Progress, too_deep: list[Path]) -> None:
    if too_deep:
        progress.say(f"warning: {len(too_deep)} folders more than {MAX_FOLDER_DEPTH} levels below a folder graded "
                     f"were not searched for notebooks (the first: {terminal_text(str(too_deep[0])[:300])}); give "
                     "their notebooks by path to grade them")
    if clashing:
        progress.say(f"warning: {len(clashing)} submissions would write their feedback and results to the same "
                     f"place as another ({', '.join(terminal_text(path) for path in clashing)}): they are graded, "
                     "but their per-submission outputs are not written; grade them in a separate run")


def hidden_from_sandboxes(notebooks: list[Path], results: Path | None, trainings, private: Iterable[Path]) -> set[Path]:
    """What no sandbox may see, wherever the sandbox's view would reach it: the submissions' folders, the
    results, the kept trainings and the outputs being written."""
    return (
        {real.parent for real in map(real_path, notebooks) if real}
        | ({results.resolve()} if results else set())
        | ({Path(trainings).resolve()} if trainings else set())
        | {Path(p).resolve() for p in private if Path(p).exists()}
    )


def announce(batch: Batch, progress: Progress, memory: str | None = None) -> None:
    """The batch's own lines: its sandbox, its share of the machine's memory (``memory``, where it holds
    the groups below the memory limit), and the folders of killed graders it removed."""
    from autograder.sandbox.method import describe_isolation
    from autograder.sandbox.scratch import remove_left_by_dead_graders

    if progress.out and batch.sandbox:
        progress.say(f"sandbox: {describe_isolation()}")
    if memory:
        progress.say(memory)
    count, freed = remove_left_by_dead_graders()
    if count:
        progress.say(f"removed {count} temporary folder{'s' * (count > 1)} ({freed / 2**20:.0f} MiB) left by "
                     "graders that were killed")


def grade_here(notebooks: list[Path], batch: Batch, results: Path | None, progress: Progress,
               workers: int, owners: list[str] | None = None) -> list[GradeReport]:
    """Each notebook in turn, or ``workers`` at once (``owners``: ``start_order``'s); reports in the order
    given. A submission killed at its
    share of the machine's memory (``memory_share``), below the memory limit, is graded again once the
    others are done, alone and at the limit: its grade is what one worker would have given it."""
    from autograder.sandbox.method import sandbox_method

    settings = run_settings(batch.limits, sandbox_method() if batch.sandbox else "unsandboxed", batch.config)
    stopped: dict[int, tuple[bytes, int]] = {}  # by place in ``notebooks``: at their share, the bytes graded, the share

    def grade_one(index: int, alone: Batch | None = None) -> GradeReport | None:
        path = notebooks[index]
        if batch.stopping:
            raise KeyboardInterrupt
        report = stored_report(results, path, batch.config, settings)
        if report is not None:
            return report
        progress.started(path)
        try:  # once: what is graded is what its result is stored for, whatever the file holds later
            graded = stopped[index][0] if alone else read_submitted_bytes(path)
        except NotebookError as error:
            graded = error
            report = unreadable(path, error, batch.config)
        else:
            try:
                report = grade_submission(path, alone or batch, graded)
            except MemoryShareExceeded as error:
                if alone:  # graded at the limit, nothing holds it to a share: never so
                    raise
                stopped[index] = graded, error.held_bytes
                progress.say(f"{terminal_text(path)}: stopped at {error.held_bytes / 2**30:.1f} GiB, its share of the "
                             "machine's memory: graded again alone once the others are done")
                return None
        if batch.stopping:  # its sandbox was killed by the grader's stop, not by its own fault
            raise KeyboardInterrupt
        if alone:
            report.usage["alone_after_share_mib"] = round(stopped[index][1] / 2**20)
        store_report(results, path, report, batch.config, graded, settings)
        return report

    if workers <= 1:
        reports = []
        for index in range(len(notebooks)):
            reports.append(grade_one(index))
            if reports[-1] is not None:
                progress.finished(reports[-1])
    else:
        reports = grade_in_pool(notebooks, grade_one, batch, progress, workers, owners)
    if stopped:
        if batch.trainers:  # nothing of the others beside it: their warm trainers go too
            batch.trainers.close()
        alone = dataclasses.replace(batch, limits=dataclasses.replace(batch.limits, group_memory_bytes=None),
                                    trainers=None)
        for index in sorted(stopped):
            reports[index] = grade_one(index, alone)
            progress.finished(reports[index])
    return reports


def grade_in_pool(notebooks: list[Path], grade_one, batch: Batch, progress: Progress,
                  workers: int, owners: list[str] | None = None) -> list[GradeReport | None]:
    """``grade_one(index)`` of each notebook, ``workers`` at once; None where it is to be graded again."""
    from autograder.batch.order import start_order

    pool = ThreadPoolExecutor(max_workers=workers)
    try:
        # The longest expected first, so that no long one starts last while the other workers idle.
        # Twins of an earlier notebook after the trainings: they will replay one (batch.trainings: reuse).
        order = start_order(notebooks, reuse=batch.trainings is not None, epochs=batch.config.epochs,
                            training_limit=batch.limits.training_seconds, owners=owners)
        futures = {index: pool.submit(grade_one, index) for index, _ in order}
        for future in as_completed(futures.values()):
            if future.result() is not None:  # None: stopped at its share, graded again at the end
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
