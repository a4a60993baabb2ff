"""The trainings a batch's trainers share: a folder of results, each under the key of everything it depends on.

A result (final variables, optimizer variables, history) is written by a trainer only, never by a
child, and only under ``training_key``: the model's signature, its compile settings, every fit
argument (arrays by content), the training it continues, the seed, the threads, the execution path,
the libraries' versions and the kit's trainer code. An identical description from another submission is replayed from
what a trainer itself computed, so no submission can plant a result for another.

A batch's folder starts empty, or with the trainings kept from earlier runs (``copy_entries``: the
instructor's ``--trainings`` folder, which only the grader writes); what its trainers add is kept
there when the batch ends.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import functools
import hashlib
import json
import os
import shutil
import stat
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from autograder.errors import AutograderError
from autograder.files import atomic_folder
from autograder.sandbox import frames
from autograder.trainer.records import compile_as_keyed

ENTRY_FILES = ("weights.npz", "optimizer.npz", "history.json")
ENTRY_BYTES = 256 * 2**20  # per file: the lesson's model takes about 3 MiB; a larger one is not the kit's
KEPT_BYTES = 2 * 2**30  # --trainings DIR at most; the lesson's trainings are 1-3 MiB each
KEPT_ENTRY_BYTES = 64 * 2**20  # a larger training is this batch's only: it is no lesson's
# What a batch's folder takes on, so that no submission can fill the disk through it (every fit call
# of a chain is a key of its own): a submission's trainings are stored up to these bounds, then only
# trained; the folder (the kept trainings copied at the start and the batch's) stops growing at
# FOLDER_BYTES. A training not stored costs its replays, never a grade.
STORED_ENTRY_BYTES = KEPT_ENTRY_BYTES  # the lesson's training takes 1-3 MiB
SUBMISSION_STORED_BYTES = 256 * 2**20
SUBMISSION_STORED_ENTRIES = 64  # the lesson makes 2-4 fit calls, one per training stored
FOLDER_BYTES = 2 * KEPT_BYTES
FREE_BYTES = 2 * 2**30  # nor below this room on its disk, which sandboxes' files and results share


def is_entry(folder: Path) -> bool:
    """A complete training under its key: a real folder of regular files of bounded size."""
    name = folder.name
    if len(name) != 64 or not all(c in "0123456789abcdef" for c in name):
        return False
    try:
        if not stat.S_ISDIR(os.lstat(folder).st_mode):
            return False
        for file in ENTRY_FILES:
            info = os.lstat(folder / file)
            if not stat.S_ISREG(info.st_mode) or info.st_size > ENTRY_BYTES:
                return False
    except OSError:
        return False
    return True


def kept_folder(folder: Path) -> Path:
    """``--trainings DIR``, made if missing: the grader's own folder, in folders nobody else can change
    (whoever can write it, or move it away, could plant a training that later runs replay)."""
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    info = os.stat(folder)
    if info.st_uid != os.geteuid() or info.st_mode & 0o022:
        raise AutograderError(
            f"--trainings {folder}: keep the trainings in a folder only you can write (this one is "
            f"{'writable by others' if info.st_mode & 0o022 else 'another user'}'s): `chmod go-w` it if it is "
            "yours, or give a new folder"
        )
    for above in folder.resolve().parents:
        info = os.stat(above)
        if info.st_mode & 0o022 and not info.st_mode & stat.S_ISVTX:  # its owner: the instructor's home, say
            raise AutograderError(
                f"--trainings {folder}: keep the trainings in a folder only you can write; others can write "
                f"{above}, which holds it, and so replace it: give a folder elsewhere"
            )
    return folder


def copy_entries(source: Path, target: Path, largest: int | None = None) -> int:
    """Copy each complete training of ``source`` that ``target`` lacks, of at most ``largest`` bytes if
    given (links never followed); how many."""
    copied = 0
    for folder in sorted(source.iterdir()) if source.is_dir() else ():
        if (target / folder.name).exists() or not is_entry(folder):
            continue
        try:
            if largest is not None and _entry_bytes(folder) > largest:
                continue
        except OSError:
            continue
        target.mkdir(mode=0o700, parents=True, exist_ok=True)  # made for root only, like DIR itself
        # A name of its own: two batches of one process may copy the same entry at once.
        built = Path(tempfile.mkdtemp(dir=target, prefix=f".{folder.name}.copy."))
        try:
            _copy_files(folder, built)
        except OSError:
            shutil.rmtree(built, ignore_errors=True)
            continue
        os.chmod(built, 0o755)
        copied += atomic_folder(built, target / folder.name)
    return copied


def keep_entries(trainings: Path, kept: Path, budget: int = KEPT_BYTES) -> int:
    """At a batch's end: its new trainings of at most ``KEPT_ENTRY_BYTES`` copied to ``kept`` (how many),
    every training it asked for or added marked as used now, and the least recently used removed (the
    largest first among equals) until ``kept`` holds at most ``budget`` bytes.

    What students submit decides what is trained (a model of the largest size a trainer allows is
    hundreds of MiB), and every batch copies the folder whole at its start: one that only grew would
    fill the instructor's disk and lengthen every later start. A training the batch asked for left its
    trainer's lock (``TrainingCache.locked``) in ``trainings``, whether it was trained or replayed."""
    now = time.time()
    copied = copy_entries(trainings, kept, largest=KEPT_ENTRY_BYTES)
    used = {lock.name[1:-len(".lock")] for lock in trainings.glob(".*.lock")}  # trained or replayed
    for gone in kept.glob(".*.gone.*"):  # what a removal, this batch's or another's, left halfway
        shutil.rmtree(gone, ignore_errors=True)
    entries = []
    for folder in kept.iterdir():
        with contextlib.suppress(OSError):
            if is_entry(folder):
                if folder.name in used:
                    os.utime(folder, (now, now), follow_symlinks=False)
                entries.append((os.lstat(folder).st_mtime, _entry_bytes(folder), folder))
    total = sum(size for _, size, _ in entries)
    for _, size, folder in sorted(entries, key=lambda entry: (entry[0], -entry[1])):
        if total <= budget:
            break
        # Out of the keys' names first, so that a removal that fails halfway leaves no broken entry.
        gone = Path(tempfile.mkdtemp(dir=kept, prefix=f".{folder.name}.gone."))
        try:
            os.rename(folder, gone / folder.name)
        except FileNotFoundError:
            if os.path.lexists(folder):  # another batch swept `gone` first: kept, and not counted as removed
                continue
            # else another batch sharing DIR removed the entry first
        finally:
            shutil.rmtree(gone, ignore_errors=True)  # real folders (is_entry): rmtree follows no link in them
        total -= size
    return copied


def folder_bytes(folder: Path) -> int:
    """The bytes of the files one level down in ``folder``: its entries and what trainers are writing
    (links not followed, what vanishes meanwhile not counted)."""
    total = 0
    with contextlib.suppress(OSError), os.scandir(folder) as entries:
        for entry in entries:
            with contextlib.suppress(OSError):
                if entry.is_dir(follow_symlinks=False):
                    with os.scandir(entry.path) as files:
                        total += sum(file.stat(follow_symlinks=False).st_size for file in files)
    return total


def free_bytes(folder: Path) -> int:
    try:
        return shutil.disk_usage(folder if folder.exists() else folder.parent).free
    except OSError:
        return 0


def _entry_bytes(folder: Path) -> int:
    return sum(os.lstat(folder / file).st_size for file in ENTRY_FILES)


def _copy_files(folder: Path, built: Path) -> None:
    """Through the folder's own handle, as ``is_entry`` saw it: a folder or a file swapped since for a
    link, a FIFO or a device is refused (OSError), never followed nor waited on."""
    directory = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    try:
        for file in ENTRY_FILES:
            handle = os.open(file, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK, dir_fd=directory)
            with open(handle, "rb") as reading:
                if not stat.S_ISREG(os.fstat(handle).st_mode):
                    raise OSError(errno.EINVAL, f"{folder / file} is not a regular file")
                data = reading.read(ENTRY_BYTES + 1)
            if len(data) > ENTRY_BYTES:
                raise OSError(errno.EFBIG, f"{folder / file} is larger than a training of the kit")
            (built / file).write_bytes(data)
    finally:
        os.close(directory)


class TrainingCache:
    """The trainings folder shared by the trainers of one batch (``folder=None``: no reuse)."""

    def __init__(self, folder: Path | None):
        self.folder = folder
        self.next_submission()

    def next_submission(self) -> None:
        """A warm trainer's turn to the next submission, whose trainings have their own bounds."""
        self.stored_bytes = self.stored_entries = 0

    def cached(self, key: str):
        """The trainings folder's result for ``key``, written by a trainer (never by a child)."""
        if self.folder is None or not (self.folder / key).is_dir():
            return None
        folder = self.folder / key
        try:
            with np.load(folder / "weights.npz", allow_pickle=False) as saved:
                weights = [saved[f"w{i}"] for i in range(len(saved.files))]
            with np.load(folder / "optimizer.npz", allow_pickle=False) as saved:
                optimizer = [saved[f"v{i}"] for i in range(len(saved.files))]
            history = json.loads((folder / "history.json").read_text())
        except (OSError, ValueError, KeyError):
            return None
        return weights, optimizer, history

    def store(self, key: str, model, history: dict) -> bool:
        """Keep a training for replays, within the bounds of its submission and of the folder; whether
        it was kept. A failure to write (a full disk) only leaves it out: the training stands."""
        if self.folder is None or (self.folder / key).exists():
            return False
        # Every variable, not only the weights: a layer's seed generator (Dropout's) is state the next
        # call of the chain trains on, and a replay must leave the model as the training did.
        weights = [np.asarray(v) for v in model.variables]
        optimizer = [np.asarray(v) for v in getattr(model.optimizer, "variables", [])]
        text = json.dumps({k: [float(x) for x in v] for k, v in history.items()})
        size = sum(array.nbytes for array in weights + optimizer) + len(text)
        if (size > STORED_ENTRY_BYTES or self.stored_entries >= SUBMISSION_STORED_ENTRIES
                or self.stored_bytes + size > SUBMISSION_STORED_BYTES
                or folder_bytes(self.folder) + size > FOLDER_BYTES or free_bytes(self.folder) - size < FREE_BYTES):
            return False
        self.stored_bytes += size  # counted even if writing fails: a disk short of room stays so
        self.stored_entries += 1
        temporary = None
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            # A name of its own: trainers share process ids (a PID namespace each), and what a killed one
            # left is another user's, which this one cannot remove.
            temporary = Path(tempfile.mkdtemp(dir=self.folder, prefix=f".{key}."))
            os.chmod(temporary, 0o755)
            (temporary / "weights.npz").write_bytes(frames.npz(weights, "w"))
            (temporary / "optimizer.npz").write_bytes(frames.npz(optimizer, "v"))
            (temporary / "history.json").write_text(text)
            return atomic_folder(temporary, self.folder / key)
        except OSError:
            if temporary is not None:
                shutil.rmtree(temporary, ignore_errors=True)
            return False

    @contextlib.contextmanager
    def locked(self, key: str):
        """While held, no other trainer of the batch trains or stores ``key``."""
        if self.folder is None:
            yield
            return
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            handle = _open_lock(self.folder / f".{key}.lock")
        except OSError:  # a disk with no room for one more file: trained all the same, only not shared
            yield
            return
        try:
            fcntl.flock(handle, fcntl.LOCK_EX)
            yield
        finally:
            os.close(handle)


def _open_lock(path: Path) -> int:
    """Read-only is enough for a lock. An existing one is opened without O_CREAT: it may be another
    trainer's (another user's) in a sticky world-writable folder, where fs.protected_regular refuses
    O_CREAT on it even read-only."""
    while True:
        try:
            return os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
        except FileNotFoundError:
            pass
        try:
            return os.open(path, os.O_RDONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
        except FileExistsError:
            continue  # another trainer made it meanwhile


def array_digest(array: np.ndarray) -> str:
    """An array's digest, its dtype and shape included: how a training's key names its data."""
    array = np.ascontiguousarray(array)
    digest = hashlib.sha256(f"{array.dtype}{array.shape}".encode())
    digest.update(array.data)
    return digest.hexdigest()


def training_key(architecture: Any, compiled: Any, described: dict, previous: str | None, seed: int, fast: bool,
                 network: Any = None) -> str:
    """Everything a training's result depends on: the model's signature, its compile settings (with the
    names of ``network``, its configuration, where they name its outputs), every fit argument (arrays by
    content), the training it continues, the seed, the number of threads, the execution path, the
    libraries' versions and the kit's trainer code."""
    import keras
    import tensorflow as tf

    payload = {
        "versions": [keras.__version__, tf.__version__, np.__version__],
        "kit": trainer_code(),
        "threads": [os.environ.get(name) for name in ("TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS")],
        "seed": seed,
        "fast": fast,
        "architecture": architecture,
        "compile": compile_as_keyed(compiled, network),
        "arguments": described,
        "previous": previous,
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=repr).encode()).hexdigest()


TRAINER_CODE = ("cache.py", "fast_path.py", "records.py", "service.py")  # all the trainer's sandbox can read


@functools.cache  # the files a process runs do not change under it; read once, not at every fit
def trainer_code() -> str:
    """The digest of the kit's trainer as it runs now: an upgraded kit may train the same description
    differently, and trainings are kept across runs (``--trainings``)."""
    digest = hashlib.sha256()
    for name in TRAINER_CODE:
        digest.update((Path(__file__).parent / name).read_bytes())
    return digest.hexdigest()


def restore_variables(model, values: list[np.ndarray]) -> None:
    """The model's variables (``model.variables``: its weights and its layers' seed generators) as a
    training stored them."""
    variables = model.variables
    if len(variables) != len(values) or any(tuple(v.shape) != w.shape for v, w in zip(variables, values)):
        raise ValueError("the stored training does not fit this model")
    for variable, value in zip(variables, values):
        variable.assign(value)


def restore_optimizer(model, variables: list[np.ndarray]) -> None:
    optimizer = model.optimizer
    if not getattr(optimizer, "built", False):
        optimizer.build(model.trainable_variables)
    for variable, value in zip(optimizer.variables, variables):
        variable.assign(value)
