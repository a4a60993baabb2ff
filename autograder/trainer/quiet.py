"""TensorFlow loaded without its start-up messages, in the grader's processes and in a student's kernel.

Its C++ side writes to stderr while it loads, before absl's logging exists and whatever
``TF_CPP_MIN_LOG_LEVEL`` says; that noise must never reach an instructor's terminal or a check cell.
"""

from __future__ import annotations

import contextlib
import io
import os
import sys
import warnings


@contextlib.contextmanager
def silenced_stderr():
    """Nothing written to file descriptor 2, nor Python's warnings, while it is held."""
    sys.stderr.flush()
    saved_fd = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    os.close(devnull)
    try:
        with contextlib.redirect_stderr(io.StringIO()), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        os.dup2(saved_fd, 2)
        os.close(saved_fd)


def import_tensorflow_quietly(for_good: bool = False) -> None:
    """Import TensorFlow with its C++ side's logging off. While it loads it writes to stderr before
    absl's logging exists ("All log messages before absl::InitializeLog()", "Could not find cuda
    drivers"), whatever TF_CPP_MIN_LOG_LEVEL says: stderr is silenced for the import itself.
    ``for_good``: kept out of the garbage collector's walks (``autograder.import_for_good``), for the
    kit's own processes; a student's kernel imports it plainly."""
    from autograder import import_for_good

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    if "tensorflow" not in sys.modules:
        with silenced_stderr():
            if for_good:
                import_for_good("tensorflow")
            else:
                import tensorflow  # noqa: F401


def quiet_tensorflow() -> None:
    """The grader's processes: TensorFlow loaded without its start-up messages and for good, figures
    drawn to files."""
    os.environ.setdefault("MPLBACKEND", "Agg")
    import_tensorflow_quietly(for_good=True)
