"""The kit's error types, every one of them, by the stage that raises it.

Each message is written for the person who has to act on it: a student learns what to fix,
an instructor learns which file failed and why. Callers show ``str(error)``, never a traceback.
Each error carries the command line's exit status for it (``exit_code``, as click's exceptions
do), which ``autograder.cli.main`` returns when one ends a command.

One exception is not an ``AutograderError``: ``TimeLimitExceeded`` interrupts student code, so
it is a ``BaseException`` that a student's ``except Exception:`` does not swallow.

This module is the base of the pipeline and is imported by the sandbox's child and the trainer
too: it defines types only, and imports nothing of the kit's.
"""

from __future__ import annotations

from pathlib import Path


class AutograderError(Exception):
    """Base class of every error the kit raises on purpose."""

    exit_code = 1  # the command failed


class TimeLimitExceeded(BaseException):
    """Raised by the alarm in the middle of student code. A BaseException, so that a student's
    `except Exception:` does not swallow it."""


# --- the instructor's config -------------------------------------------------------------------------


class ConfigError(AutograderError):
    """A value of the config file (autograder.toml) or of an option that overrides it is wrong."""

    exit_code = 2  # as for a wrong command line: nothing was graded

    def __init__(self, where: str | Path, key: str | None, problem: str):
        self.where, self.key, self.problem = str(where), key, problem
        super().__init__(f"{where}: {key}: {problem}" if key else f"{where}: {problem}")


# --- the data ------------------------------------------------------------------------------------


class DataError(AutograderError):
    """Fashion-MNIST could not be loaded."""


class DataNotFoundError(DataError):
    """No copy of Fashion-MNIST was found in any of the places the loader looks."""


class CorruptDataError(DataError):
    """A Fashion-MNIST file exists but its content is wrong."""

    def __init__(self, path: str | Path, problem: str):
        self.path = Path(path)
        self.problem = problem
        super().__init__(
            f"{self.path}: {problem}. Replace this file with a good copy "
            "(reinstall the Debian package dataset-fashion-mnist, or delete it to download it again)."
        )


# --- a submitted notebook ----------------------------------------------------------------------------


class NotebookError(AutograderError):
    """A notebook could not be read or its functions could not be loaded."""

    def __init__(self, path: str | Path, problem: str):
        self.path = Path(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")


class MissingFunctionError(NotebookError):
    """The notebook ran but does not define every function the assignment asks for."""

    def __init__(self, path: str | Path, missing: list[str], causes: list[str] = ()):
        self.missing = list(missing)
        self.causes = list(causes)
        names = ", ".join(f"`{name}`" for name in self.missing)
        problem = (
            f"the notebook does not define {names}; write "
            f"{'it' if len(self.missing) == 1 else 'each one'} in its own solution cell with exactly that name"
        )
        if self.causes:
            problem += f" (what went wrong: {'; '.join(self.causes)})"
        super().__init__(path, problem)


# --- the sandbox and what crosses it -------------------------------------------------------------------


class SandboxError(AutograderError):
    """The sandbox could not be set up (a module of CHILD_MODULES missing, no free user, ...)."""


class FrameError(AutograderError):
    """A frame broke the protocol's bounds or format."""


class ArtifactError(AutograderError):
    """An artifact file is missing, too large or malformed (the child died, or was tampered with)."""


class ArtifactMissing(ArtifactError):
    """An artifact file does not exist."""


class ArtifactTooLarge(ArtifactError):
    """An artifact file is larger than its bound."""


class MemoryShareExceeded(AutograderError):
    """A submission's sandbox or trainer was killed at its share of the machine's memory, below the memory
    limit: it is graded again alone, at the limit (autograder.sandbox.slots.memory_share)."""

    def __init__(self, path: Path, held_bytes: int):
        self.path, self.held_bytes = Path(path), held_bytes
        super().__init__(f"{path}: stopped at {held_bytes / 2**30:.1f} GiB, its share of the machine's memory")


class StudentError(AutograderError):
    """A student's function failed; the message says what to fix."""

    def __init__(self, message: str, not_done: bool = False):
        super().__init__(message)
        self.not_done = not_done


class TrainingNotReproducible(AutograderError):
    """The kit's trainer could not run this ``fit`` call; the message says why, for the student."""


# --- the kit's trainer ---------------------------------------------------------------------------------


class Refused(AutograderError):
    """This fit call cannot be reproduced; the message is for the student.

    ``message`` is a catalogue message (``autograder.i18n``) with ``{name}`` fields that ``fields``
    fill: the trainer's record keeps both, so that whoever shows it to a student translates it, in
    the student's language, whichever language the training was first refused in."""

    def __init__(self, message: str, **fields: str):
        self.template, self.fields = message, {name: str(value) for name, value in fields.items()}
        super().__init__(message.format(**self.fields))


class TrainerTimeout(AutograderError):
    """The trainer did not answer in the time left to the training."""


# --- the judge -------------------------------------------------------------------------------------------


class CheckFailed(AutograderError):
    """A check did not pass; the message says what to fix."""


class NotDone(CheckFailed):
    """The student has not written this function yet (the stub still raises NotImplementedError)."""


class FigureUnreadable(AutograderError, ValueError):
    """The drawing cannot be read: malformed, or past one of the bounds. The message is for the student."""


class CheckFailedInNotebook(AutograderError, AssertionError):
    """A failed check, shown in the notebook with the check's own message (an AssertionError, as a
    failed test cell's should be)."""


# --- the reports -------------------------------------------------------------------------------------


class GradebookNotReady(AutograderError):
    """nbgrader's gradebook does not exist yet, or does not know the assignment: no grade was written."""

    exit_code = 2  # checked before grading too: as for a wrong command line

    def __init__(self, where: str, assignment: str):
        super().__init__(
            f"{where} holds no nbgrader gradebook of the assignment {assignment}: run `nbgrader generate_assignment "
            f"{assignment}` in the course folder first (it makes the gradebook and records the assignment's "
            "checks), then the same grade command again: the results folder keeps every grade"
        )


class OutputError(AutograderError):
    """Some of an output's files could not be written; the others were."""

    def __init__(self, what: str, failures: list[str], written: list[Path] = ()):
        self.failures, self.written = list(failures), list(written)
        more = f"; and {len(self.failures) - 3} more" if len(self.failures) > 3 else ""
        shown = "; ".join(self.failures[:3]) + more
        total = len(self.failures) + len(self.written)
        super().__init__(f"{what}: {len(self.failures)} of {total} not written (the others were): {shown}")
