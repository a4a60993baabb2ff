"""What every submission of a batch is graded with, made once per batch: ``open_batch``.

The reference data and the probes' inputs, the child's input files (root's, read-only), the
trainer's input files and the trainers' shared cache of trainings, the limits, the instructor's
config (autograder.config: the points and the pass mark) and the options. The
local pool opens one batch for all its submissions; a cluster's worker opens one for all the
submissions it grades in one run (autograder.batch.cluster).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import threading
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

from autograder.config import Config
from autograder.limits import Limits


@dataclass
class Batch:
    """What every submission of a batch is graded with: the kit's data and inputs, the limits."""

    data: object  # autograder.data.reference.ReferenceData
    inputs: object  # autograder.data.inputs.ProbeInputs
    input_files: list[Path]  # the child's inputs, root's and read-only
    trainer_inputs: Path  # the trainer's: the training images and labels, and the test images
    trainings: Path | None  # the trainers' cache of trainings (None: every submission trains)
    limits: Limits
    hide: list[Path] = field(default_factory=list)  # what the sandboxed code must not read
    stop: threading.Event | None = None  # set when the batch is being stopped: what runs now is no result
    sandbox: bool = True  # False: the notebooks' code runs in the grader's process (trusted notebooks only)
    config: Config = field(default_factory=Config)  # the points and the pass mark the judge applies
    trainers: object = None  # autograder.trainer.desk.WarmTrainers, each thread's trainer kept warm; None: one each

    @property
    def checks(self) -> tuple:
        """The checks table with the config's points (autograder.judge.checks.checks_table)."""
        from autograder.judge.checks import checks_table

        return checks_table(self.config)

    @property
    def stopping(self) -> bool:
        return self.stop is not None and self.stop.is_set()


@contextlib.contextmanager
def open_batch(
    *,
    data_dir=None,
    limits: Limits | None = None,
    sandbox: bool = True,
    reuse: bool = True,
    hide: Iterable[Path] = (),
    stop: threading.Event | None = None,
    config: Config | None = None,
    kept: Path | None = None,
):
    """Load the data and write the batch's files once; yields the ``Batch``; removes the files after.

    ``reuse``: the trainers share a cache, so a training already run from an identical description
    is replayed (autograder.trainer.service); without it every submission trains.
    ``kept``: a folder of trainings from earlier runs, replayed too, and where this batch's are kept.
    """
    from autograder.data.inputs import ProbeInputs
    from autograder.data.reference import ReferenceData
    from autograder.sandbox.scratch import new_folder
    from autograder.trainer.cache import copy_entries, keep_entries
    from autograder.trainer.desk import WarmTrainers
    from autograder.trainer.quiet import quiet_tensorflow

    if not sandbox:  # the notebooks' code imports it here; sandboxed, a submission's first fit does (batch.steps)
        quiet_tensorflow()
    data = ReferenceData.load(data_dir)
    inputs = ProbeInputs.from_reference(data)
    folder = new_folder("batch")
    trainings = None
    trainers = WarmTrainers((limits or Limits()).memory_bytes, (limits or Limits()).group_memory)
    try:
        os.chmod(folder, 0o755)
        if reuse:
            trainings = shared_folder(folder / "trainings")
            if kept:
                copy_entries(kept, trainings)
        yield Batch(
            data=data,
            inputs=inputs,
            input_files=inputs.save(folder / "inputs") if sandbox else [],
            trainer_inputs=save_trainer_inputs(data, folder / "trainer"),
            trainings=trainings,
            limits=limits or Limits(),
            hide=sorted(hide),
            stop=stop if stop is not None else threading.Event(),
            sandbox=sandbox,
            config=config or Config(),
            trainers=trainers,
        )
    finally:
        trainers.close()  # before the inputs they read go
        try:
            if trainings and kept:
                keep_entries(trainings, kept)
        except OSError as error:  # a cache: the batch's reports stand without it
            warnings.warn(f"this run's trainings were not kept in {kept}: {error}", stacklevel=1)
        finally:
            shutil.rmtree(folder, ignore_errors=True)


def shared_folder(folder: Path) -> Path:
    """The trainers' cache: each trainer runs as a user of its own, and all may add to it."""
    folder.mkdir()
    os.chmod(folder, 0o1777)
    return folder


def save_trainer_inputs(data, folder: Path) -> Path:
    """The trainer's inputs: the training set and the test images (never their labels), root's."""
    import numpy as np

    folder.mkdir(parents=True)
    for name, array in (("train_images", data.train_images), ("train_labels", data.train_labels),
                        ("test_images", data.test_images)):
        np.save(folder / f"{name}.npy", array, allow_pickle=False)
    return folder
