"""The results store: one file per submission, written atomically as soon as its result is known.

A batch run again after the grader was killed picks up where it stopped: a stored result counts
only for the exact bytes it graded (read as grading reads them: bounded, never through a link), by
the kit's code as it is now and the libraries it grades with (``kit_code``: an upgraded kit's judge may
grade the same bytes otherwise), with the same points, pass mark, epochs and language
(autograder.config), under the same limits and isolation (``run_settings``): see ``digest``.
Each is written with the kit's one atomic writer (``autograder.files.atomic_write``).
"""

from __future__ import annotations

import functools
import hashlib
import importlib.metadata
import json
import os
import platform
import re
import warnings
from pathlib import Path

from autograder.assignment import SOURCE_NOTEBOOK
from autograder.errors import NotebookError
from autograder.files import atomic_write
from autograder.i18n import choose_language, known_language
from autograder.judge.checks import checks_table
from autograder.judge.report import GradeReport, json_safe
from autograder.limits import Limits
from autograder.submission.notebook import read_submitted_bytes
from autograder.text import terminal_text

EARLIER_NOTE = "graded earlier: result read from the results folder"


KIT = Path(__file__).resolve().parent.parent


@functools.cache  # the files a process runs do not change under it
def kit_code() -> str:
    """The digest of the kit's code and messages as installed, of the lesson's source notebook (its
    set-up cells run in every sandbox), of Python's version and of every installed distribution's: a new
    version of any may parse a cell, train, save or read a model otherwise."""
    # Each once: the working folder on sys.path (``python -m``) lists a package's egg-info there again.
    installed = sorted({f"{dist.metadata['Name']} {dist.version}" for dist in importlib.metadata.distributions()})
    try:
        lesson = hashlib.sha256(SOURCE_NOTEBOOK.read_bytes()).hexdigest()
    except OSError:
        lesson = "-"
    python = f"{platform.python_implementation()} {platform.python_version()} {platform.machine()}"  # not the kernel's
    return code_digest(KIT, "\n".join([python, *installed, lesson]))


def code_digest(folder: Path, more: str = "") -> str:
    """The digest of the ``.py`` and ``.po`` files under ``folder``, by their paths in it, and of ``more``."""
    digest = hashlib.sha256(more.encode())
    for path in sorted(folder.rglob("*")):
        if path.suffix in (".py", ".po") and "__pycache__" not in path.parts and path.is_file():
            digest.update(path.relative_to(folder).as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def run_settings(limits: Limits | None = None, isolation: str = "", config=None) -> str:
    """What a result also depends on, beyond the notebook and the config: the limits it ran under (a
    rerun with a longer time limit after timeouts on a busy machine grades again), how its code was
    isolated (``autograder.sandbox.method.sandbox_method``, "unsandboxed", or a cluster's workers'), and,
    without ``config``'s language, the locale's, which a notebook that names none of its own is told in.
    The data is not in it: wherever it comes from, it is Fashion-MNIST to the byte (``read_idx``)."""
    # Not the batch's share of memory (group_memory_bytes): a submission stopped at its share is graded
    # again alone, at the limit (autograder.batch.local.MemoryGate), so no result depends on it.
    bounds = {name: float(value) for name, value in (limits or Limits()).to_json().items()  # 900 is 900.0
              if name != "group_memory_bytes"}
    locale = None if config is not None and config.lang else choose_language()
    return json.dumps({"limits": bounds, "isolation": isolation, "locale": locale}, sort_keys=True)


def digest(path: Path, config=None, graded: bytes | NotebookError | None = None, settings: str = "") -> str:
    """What a stored result is valid for: these exact bytes, graded by the kit's code as it is now
    (``kit_code``) with ``config``'s points, pass mark, epochs and language and the run's ``settings``
    (``run_settings``). ``graded``: the bytes grading read, or why it could not read them; None: the file's now."""
    if graded is None:
        try:  # as grading reads it: a bounded regular file, never a link's target
            graded = read_submitted_bytes(path)
        except NotebookError as error:
            graded = error
    if isinstance(graded, NotebookError):
        graded = f"<not read: {graded}>".encode()
    content = hashlib.sha256(graded).hexdigest()
    grading = hashlib.sha256(f"{grading_key(config)}\n{settings}".encode()).hexdigest()[:16]
    return f"{kit_code()}:{content}:{grading}"


def grading_key(config) -> str:
    """The points, the pass mark, the epochs and the language ``config`` grades with, or "" where they are
    the defaults (no language given: each notebook's own)."""
    from autograder.assignment import EPOCHS
    from autograder.config import DEFAULT_PASS_MARK
    from autograder.judge.checks import CHECKS, checks_table

    if config is None:
        return ""
    points = [check.points for check in checks_table(config)]
    defaults = points == [check.points for check in CHECKS] and config.pass_mark == DEFAULT_PASS_MARK
    if defaults and config.epochs == EPOCHS and not config.lang:
        return ""
    key = {"pass_mark": config.pass_mark, "points": points}
    key |= {"epochs": config.epochs} if config.epochs != EPOCHS else {}
    return json.dumps(key | ({"lang": config.lang} if config.lang else {}))


def result_file(results: Path, path: Path) -> Path:
    """One file per submission path, named so that any submitted name fits (a file name is at most
    255 bytes, and need not be UTF-8): the stem cut short, readable, and a digest of the whole path as
    given, never where links lead (a student's folder swapped for a link to a classmate's would name
    the classmate's file)."""
    name = hashlib.sha256(os.fsencode(path.absolute())).hexdigest()[:16]
    stem = re.sub(r"[^A-Za-z0-9._-]", "_", path.stem)[:64]
    return results / f"{stem}-{name}.json"


def stored_report(results: Path | None, path: Path, config=None, settings: str = "") -> GradeReport | None:
    """The stored result for ``path``'s current bytes, with a note saying so; None if there is none.
    ``settings``: the run's (``run_settings``)."""
    if results is None:
        return None
    try:
        stored = json.loads(result_file(results, path).read_text())
        # Without "states", an older version's: it would show the checks still to do as failed.
        if stored.get("digest") == digest(path, config, settings=settings) and "states" in stored:
            report = GradeReport.from_payload(stored)
            if not report.adds_up(checks_table(config)) or known_language(report.lang) != report.lang:
                return None  # (a language the kit does not speak raises: graded again too)
            report.submission = str(path)  # as given: the file holds it as text strict JSON can hold
            report.notes.append(EARLIER_NOTE)
            return report
    except Exception:  # a file that is no result (planted, or damaged): graded again
        pass
    return None


def store_report(results: Path | None, path: Path, report: GradeReport, config=None,
                 graded: bytes | NotebookError | None = None, settings: str = "") -> None:
    """Keep one result (nothing without a results folder); a reader or a rerun sees the old file or the new.
    ``graded``: the bytes the result is of, as grading read them (or why it could not), not what the
    file holds by now: a notebook swapped while it was graded must not lend its result to the other."""
    if results is None:
        return
    payload = {"digest": digest(path, config, graded, settings), **report.payload()}
    try:
        atomic_write(result_file(results, path), json.dumps(json_safe(payload), allow_nan=False))
    except OSError as error:  # a full disk: the report stands for this run, the batch goes on
        # The path as a terminal line shows it: a student's folder name is theirs, controls and all.
        warnings.warn(f"{terminal_text(str(path))}: its result was not kept in {terminal_text(str(results))} "
                      f"({terminal_text(str(error))}); a rerun grades it again", stacklevel=2)
