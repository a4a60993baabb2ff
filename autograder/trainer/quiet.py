"""TensorFlow loaded without its start-up messages, in the grader's processes and in a student's kernel.

Its C++ side writes to stderr while it loads, before absl's logging exists and whatever
``TF_CPP_MIN_LOG_LEVEL`` says; that noise must never reach an instructor's terminal or a check cell.
"""

from __future__ import annotations

import atexit
import contextlib
import io
import os
import re
import sys
import threading
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


def import_tensorflow_quietly(for_good: bool = False, beside_threads: bool = False) -> None:
    """Import TensorFlow with its C++ side's logging off. While it loads it writes to stderr before
    absl's logging exists ("All log messages before absl::InitializeLog()", "Could not find cuda
    drivers"), whatever TF_CPP_MIN_LOG_LEVEL says: stderr is silenced for the import itself.
    ``for_good``: kept out of the garbage collector's walks (``autograder.import_for_good``), for the
    kit's own processes; a student's kernel imports it plainly. ``beside_threads``: for a process whose
    other threads may write to stderr meanwhile (the grader once its sandboxes run): only TensorFlow's
    start-up lines are kept from it (``start_up_lines_dropped``), and the warnings filters are left alone."""
    from autograder import import_for_good

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    if "tensorflow" not in sys.modules:
        with start_up_lines_dropped() if beside_threads else silenced_stderr():
            if for_good:
                import_for_good("tensorflow")
            else:
                import tensorflow  # noqa: F401


def quiet_tensorflow(beside_threads: bool = False) -> None:
    """The grader's processes: TensorFlow loaded without its start-up messages and for good, figures
    drawn to files."""
    os.environ.setdefault("MPLBACKEND", "Agg")
    import_tensorflow_quietly(for_good=True, beside_threads=beside_threads)


# What TensorFlow's C++ side writes while it loads: absl's notice, then lines in its log format
# ("I0000 00:00:1796031016.555632   24224 port.cc:153] oneDNN custom operations are on...").
START_UP_LINE = re.compile(
    rb"WARNING: All log messages before absl::InitializeLog\(\)|[IWEF]\d{4} [\d:.]+ +\d+ [\w.-]+:\d+\] ")


@contextlib.contextmanager
def start_up_lines_dropped():
    """File descriptor 2 through a pipe while held: a thread passes every line on but TensorFlow's
    start-up lines (``START_UP_LINE``)."""
    sys.stderr.flush()
    fds = list(os.pipe())
    try:
        fds += [os.dup(2), os.dup(2)]
        read, write, out, saved = fds
        passer = threading.Thread(target=_pass_on, args=(read, out), daemon=True, name="stderr-filter")
        passer.start()  # it owns ``read`` and ``out`` from here
    except BaseException:
        for fd in fds:
            os.close(fd)
        raise
    os.dup2(write, 2)
    os.close(write)
    restoring = threading.Lock()

    def restore() -> None:
        if not restoring.acquire(blocking=False):
            return
        sys.stderr.flush()
        os.dup2(saved, 2)  # the pipe's last writer gone (but for a process started meanwhile): the thread ends
        os.close(saved)
        passer.join(timeout=1.0)

    # A process ending meanwhile (Ctrl-C, a fault) runs this before its daemon threads stop: its last
    # lines, in the pipe, still come out.
    atexit.register(restore)
    try:
        yield
    finally:
        atexit.unregister(restore)
        restore()


def _pass_on(read: int, out: int) -> None:
    def write(data: bytes) -> None:
        while data:
            data = data[os.write(out, data):]

    pending = b""
    try:
        while chunk := os.read(read, 65536):
            *lines, pending = (pending + chunk).split(b"\n")
            write(b"".join(line + b"\n" for line in lines if not START_UP_LINE.match(line)))
        if not START_UP_LINE.match(pending):
            write(pending)
    except OSError:
        pass
    finally:
        os.close(read)
        os.close(out)
