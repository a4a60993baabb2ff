"""What an instructor can limit, in one place (the command line reuses these defaults)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

DEFAULT_RESULTS = Path("autograder-results")


@dataclass(frozen=True)
class Limits:
    """What one submission may use. The defaults suit the 30-epoch lesson on a 2-core machine."""

    submission_seconds: float = 900.0  # everything the child does, training included
    cell_seconds: float = 120.0  # one set-up or solution cell, or one non-training function call
    training_seconds: float = 600.0  # build, compile and train_model together
    # Each process's address space (TensorFlow alone maps about 3 GiB); where the machine has
    # cgroups (autograder.sandbox), also the memory of the sandbox's processes and files together.
    memory_bytes: int = 8 * 1024**3
    processes: int = 512  # processes and threads of one sandbox (TensorFlow runs ~60 threads)
    file_bytes: int = 1024**3  # largest file the child may write (its arrays of 60,000 images)
    # Where the machine allows it (root, see autograder.sandbox), the sandbox's files live in memory
    # of its own, counted in its memory limit: its scratch folder (the artifacts: 212 MB for the
    # lesson, up to 1.5 GiB of arrays and the models) and each of its /tmp, /var/tmp and /dev/shm.
    scratch_bytes: int = 2 * 1024**3
    temporary_bytes: int = 512 * 1024**2

    def to_json(self) -> dict:
        return asdict(self)
