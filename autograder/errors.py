"""The kit's error types.

Each message is written for the person who has to act on it: a student learns what to fix,
an instructor learns which file failed and why. Callers show ``str(error)``, never a traceback.
"""

from __future__ import annotations

from pathlib import Path


class AutograderError(Exception):
    """Base class of every error the kit raises on purpose."""


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
