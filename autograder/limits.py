"""What an instructor can limit, in one place (the command line reuses these defaults), and the
alarm that holds student code to a time limit inside the process that runs it."""

from __future__ import annotations

import contextlib
import signal
import threading
from dataclasses import asdict, dataclass
from pathlib import Path

from autograder.errors import TimeLimitExceeded

DEFAULT_RESULTS = Path("autograder-results")


@dataclass(frozen=True)
class Limits:
    """What one submission may use. The defaults suit the 30-epoch lesson on a 2-core machine."""

    submission_seconds: float = 900.0  # everything the child does, training included
    cell_seconds: float = 120.0  # one set-up or solution cell, or one non-training function call
    training_seconds: float = 600.0  # build, compile and train_model together
    # Each process's address space (TensorFlow alone maps about 3 GiB); where the machine has
    # cgroups (autograder.sandbox.confine), also the memory of the sandbox's processes and files together.
    memory_bytes: int = 8 * 1024**3
    # Where lower: the memory cgroup's cap of each sandbox and trainer, a batch's share of the machine
    # (autograder.sandbox.slots.memory_share); never set by the instructor.
    group_memory_bytes: int | None = None
    processes: int = 512  # processes and threads of one sandbox (TensorFlow runs ~60 threads)
    file_bytes: int = 1024**3  # largest file the child may write (its arrays of 60,000 images)
    # Where the machine allows it (root, see autograder.sandbox.confine), the sandbox's files live in memory
    # of its own, counted in its memory limit: its scratch folder (the artifacts: 212 MB for the
    # lesson, up to 1.5 GiB of arrays and the models) and each of its /tmp, /var/tmp and /dev/shm.
    scratch_bytes: int = 2 * 1024**3
    temporary_bytes: int = 512 * 1024**2

    @property
    def group_memory(self) -> int:
        """What a sandbox's or a trainer's processes and in-memory files may hold together, where cgroups count it."""
        return min(self.memory_bytes, self.group_memory_bytes or self.memory_bytes)

    def to_json(self) -> dict:
        return asdict(self)


# Set by the command line's handler of Ctrl-C and SIGTERM (``stopped_by_a_person``), never in a sandbox.
STOPPED = threading.Event()


def stopped_by_a_person(signum, frame):
    """The command line's Ctrl-C and SIGTERM: marked as the person's, then a KeyboardInterrupt."""
    STOPPED.set()
    raise KeyboardInterrupt


def not_the_student_s(error: BaseException) -> bool:
    """Whether an exception out of student code is not the student's failure: the kit's alarm, or a person
    stopping the command (``stopped_by_a_person``). A KeyboardInterrupt the student raises, a way to stop
    Run All in Jupyter, is the student's; anything else a cell or a function raises IPython shows as a
    traceback and goes on, and so does grading."""
    return isinstance(error, TimeLimitExceeded) or (isinstance(error, KeyboardInterrupt) and STOPPED.is_set())


MESSAGE_CHARACTERS = 2000  # of a student exception's message: a message the student reads, not a file


def exception_words(error: BaseException) -> tuple[str, str]:
    """The class name and the message of an exception student code raised, both bounded: its class and
    its ``__str__`` are the student's too, and may raise or never return."""
    name = type.__dict__["__name__"].__get__(type(error))  # the class's own, never a metaclass's property
    try:
        with time_limit(5):
            return name, str.__getitem__(str(error), slice(MESSAGE_CHARACTERS))  # a str, never a subclass of it
    except BaseException as failure:
        if not_the_student_s(failure) and not isinstance(failure, TimeLimitExceeded):
            raise
        return name, ""


@contextlib.contextmanager
def time_limit(seconds: float | None):
    """Interrupt the block after ``seconds`` (main thread only; the sandbox's wall clock backs it up)."""
    if not seconds or threading.current_thread() is not threading.main_thread():
        yield
        return

    def on_alarm(signum, frame):
        raise TimeLimitExceeded(seconds)

    previous = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
