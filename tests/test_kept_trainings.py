"""The trainings a batch's trainers store, and those kept across runs (``--trainings DIR``): within
bounds no submission can push, only the grader's own folder, and copying never follows a link, waits
on a FIFO or trips over another copy of the same process."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest

from autograder.errors import AutograderError
from autograder.trainer import cache
from autograder.trainer.cache import ENTRY_FILES, TrainingCache, copy_entries, keep_entries

KEY = "ab" * 32


def entry(folder: Path, key: str = KEY, content: bytes = b"kit") -> Path:
    made = folder / key
    made.mkdir(parents=True)
    for file in ENTRY_FILES:
        (made / file).write_bytes(content)
    return made


def test_a_trainings_folder_others_can_write_is_refused_before_anything_is_graded(tmp_path):
    from autograder.batch.local import grade_notebooks

    notebook = next(Path(__file__).parent.joinpath("submissions").glob("*.ipynb"))
    shared = tmp_path / "trainings"
    shared.mkdir()
    os.chmod(shared, 0o777)  # e.g. made beforehand in /tmp by another user of the machine
    with pytest.raises(AutograderError, match="only you can write"):
        grade_notebooks([notebook], data_dir=tmp_path / "no-data", trainings=shared)


def test_an_entry_swapped_for_a_link_after_it_was_checked_is_not_followed(tmp_path, monkeypatch):
    elsewhere = entry(tmp_path / "elsewhere", content=b"planted")
    source, target = tmp_path / "source", tmp_path / "target"
    source.mkdir()
    target.mkdir()
    (source / KEY).symlink_to(elsewhere)
    monkeypatch.setattr(cache, "is_entry", lambda folder: True)  # the check passed, then the folder was swapped
    copy_entries(source, target)
    assert not (target / KEY).exists()


def test_a_file_swapped_for_a_fifo_after_it_was_checked_is_not_waited_on(tmp_path, monkeypatch):
    source, target = tmp_path / "source", tmp_path / "target"
    made = entry(source)
    target.mkdir()
    (made / ENTRY_FILES[0]).unlink()
    os.mkfifo(made / ENTRY_FILES[0])
    monkeypatch.setattr(cache, "is_entry", lambda folder: True)
    copying = threading.Thread(target=copy_entries, args=(source, target), daemon=True)
    copying.start()
    copying.join(10)
    stuck = copying.is_alive()
    if stuck:  # let the thread go
        with open(os.open(made / ENTRY_FILES[0], os.O_WRONLY | os.O_NONBLOCK), "wb"):
            pass
    assert not stuck
    assert not (target / KEY).exists()


def test_two_copies_at_once_in_one_process_do_not_break_each_other(tmp_path, monkeypatch):
    source, target = tmp_path / "source", tmp_path / "target"
    entry(source)
    entry(source, "cd" * 32)
    target.mkdir()
    placed = cache.atomic_folder
    started = []

    def other_copy_meanwhile(built, path):  # e.g. two batches of one process keeping their trainings
        if not started:
            started.append(path)
            copy_entries(source, target)
        return placed(built, path)

    monkeypatch.setattr(cache, "atomic_folder", other_copy_meanwhile)
    copy_entries(source, target)
    assert sorted(p.name for p in target.iterdir()) == [KEY, "cd" * 32]
    assert all((target / KEY / file).read_bytes() == b"kit" for file in ENTRY_FILES)


def test_a_trainings_folder_gone_by_the_end_of_the_batch_loses_no_report_and_leaves_no_batch_folder(
    tmp_path, real_data_dir
):
    from autograder.batch.shared import open_batch

    kept = tmp_path / "kept"
    kept.mkdir(mode=0o700)
    with pytest.warns(UserWarning, match="not kept"):
        with open_batch(data_dir=real_data_dir, sandbox=False, kept=kept) as batch:
            entry(batch.trainings)
            kept.rmdir()
            kept.write_text("")  # e.g. the instructor moved the folder away while the batch ran
    assert not batch.trainings.parent.exists()


def test_the_key_of_a_training_changes_with_the_kit_s_trainer_code(tmp_path, monkeypatch):
    """A kit upgraded between two runs that keep their trainings: its trainer may train differently."""
    import shutil

    from autograder.trainer.cache import training_key

    def key():
        return training_key({"layers": []}, {"optimizer": "sgd"}, {"epochs": 1}, None, 42, True)

    before = key()
    upgraded = tmp_path / "trainer"
    shutil.copytree(Path(cache.__file__).parent, upgraded)
    with open(upgraded / "fast_path.py", "a") as source:
        source.write("\nBATCHES_PER_STEP = 2  # an upgrade that changes how an epoch runs\n")
    monkeypatch.setattr(cache, "__file__", str(upgraded / "cache.py"))
    cache.trainer_code.cache_clear()  # read once per process: here the process "upgrades"
    try:
        assert key() != before
        assert key() == key()
    finally:
        monkeypatch.undo()
        cache.trainer_code.cache_clear()
    assert key() == before


def test_a_trainings_folder_inside_a_folder_others_can_write_is_refused(tmp_path):
    """Whoever can write the folder above can move the grader's folder away and put their own in its place."""
    from autograder.trainer.cache import kept_folder

    above = tmp_path / "shared"
    above.mkdir()
    os.chmod(above, 0o777)
    with pytest.raises(AutograderError, match="only you can write"):
        kept_folder(above / "trainings")
    os.chmod(above, 0o1777)  # like /tmp: nobody may move another's folder
    assert kept_folder(above / "trainings") == above / "trainings"


def test_a_trainer_takes_the_lock_another_trainer_user_made_where_protected_regular_is_on(tmp_path, monkeypatch):
    """fs.protected_regular (1 on most distributions) refuses O_CREAT on an existing file of another
    user in a sticky world-writable folder, such as the batch's trainings folder (1777), even read-only."""
    from autograder.trainer.cache import TrainingCache

    trainings = tmp_path / "trainings"
    trainings.mkdir()
    (trainings / f".{KEY}.lock").write_text("")  # made by the first trainer, another sandbox user
    opening = os.open

    def kernel_with_protected_regular(path, flags, *args, **kwargs):
        if flags & os.O_CREAT and os.path.exists(path) and str(path).endswith(".lock"):
            raise PermissionError(13, "Permission denied", str(path))
        return opening(path, flags, *args, **kwargs)

    monkeypatch.setattr(os, "open", kernel_with_protected_regular)
    with TrainingCache(trainings).locked(KEY):
        pass


def test_a_trainer_stores_its_training_beside_what_a_killed_trainer_of_another_user_left(tmp_path):
    """Each trainer has a PID namespace of its own, so two trainers have the same process id; the one
    killed mid-store left a folder under that id which the next, another user, cannot remove (1777)."""
    import numpy as np

    from autograder.trainer.cache import TrainingCache

    class Model:
        optimizer = None
        variables = [np.ones(3)]

    trainings = tmp_path / "trainings"
    trainings.mkdir()
    (trainings / f".{KEY}.{os.getpid()}").write_text("")  # stands for a folder this user cannot remove
    TrainingCache(trainings).store(KEY, Model(), {"loss": [1.0]})
    assert TrainingCache(trainings).cached(KEY)[2] == {"loss": [1.0]}


def test_the_kept_trainings_stay_within_their_budget_the_least_recently_used_going_first(tmp_path):
    """What students submit decides what is trained, and every batch copies DIR whole at its start: a
    folder that only grew would fill the instructor's disk and lengthen every later start."""
    kept, batch = tmp_path / "kept", tmp_path / "batch"
    used, old, other, new, large = "b" * 64, "c" * 64, "d" * 64, "e" * 64, "f" * 64
    past = time.time() - 3600
    for age, key in enumerate((used, old, other)):
        entry(kept, key, content=b"x" * 100)
        os.utime(kept / key, (past + age, past + age))
    copy_entries(kept, batch)
    for key in (used, new, large):  # the batch replayed one kept training and trained two new ones
        (batch / f".{key}.lock").touch()
    entry(batch, new, content=b"y" * 1000)
    entry(batch, large, content=b"z" * 1000)
    os.truncate(batch / large / "weights.npz", cache.KEPT_ENTRY_BYTES + 1)  # no lesson's training is so large

    assert keep_entries(batch, kept, budget=100 * len(ENTRY_FILES) + 1000 * len(ENTRY_FILES)) == 1
    # The used one and the new one were used now; of the others, `old` was used least recently.
    assert sorted(p.name for p in kept.iterdir()) == sorted([used, new])
    assert (kept / new / "weights.npz").read_bytes() == b"y" * 1000
    later = tmp_path / "later"  # the next batch uses both: among trainings used as recently, the largest goes
    copy_entries(kept, later)
    for key in (used, new):
        (later / f".{key}.lock").touch()
    assert keep_entries(later, kept, budget=1000 * len(ENTRY_FILES)) == 0
    assert [p.name for p in kept.iterdir()] == [used]
    keep_entries(later, kept, budget=0)
    assert list(kept.iterdir()) == []


def test_two_batches_sharing_the_kept_trainings_evict_without_breaking_each_other(tmp_path, monkeypatch):
    kept, batch = tmp_path / "kept", tmp_path / "batch"
    for key in ("b" * 64, "c" * 64):
        entry(kept, key, content=b"x" * 100)
    (kept / ".abc.gone.left").mkdir()  # what another batch's removal left halfway
    batch.mkdir()
    real_rename = os.rename

    def removed_by_the_other_batch_first(source, target):
        if Path(source).name == "b" * 64 and not Path(target).name.startswith("."):
            cache.shutil.rmtree(source)
        return real_rename(source, target)

    monkeypatch.setattr(os, "rename", removed_by_the_other_batch_first)
    keep_entries(batch, kept, budget=0)
    assert list(kept.iterdir()) == []


def test_an_entry_whose_removal_another_batch_swept_away_is_kept_and_not_counted_as_removed(tmp_path, monkeypatch):
    kept, batch = tmp_path / "kept", tmp_path / "batch"
    past = time.time() - 3600
    for age, key in enumerate(("b" * 64, "c" * 64)):
        entry(kept, key, content=b"x" * 100)
        os.utime(kept / key, (past + age, past + age))
    batch.mkdir()
    real_rename, swept = os.rename, []

    def swept_first(source, target):  # another batch's sweep took this batch's first `.gone.` folder
        if not swept:
            swept.append(target)
            cache.shutil.rmtree(Path(target).parent)
        return real_rename(source, target)

    monkeypatch.setattr(os, "rename", swept_first)
    keep_entries(batch, kept, budget=100 * len(ENTRY_FILES))
    assert [p.name for p in kept.iterdir()] == ["b" * 64]  # still over budget after b: c went


class FakeModel:
    """What ``TrainingCache.store`` reads of a trained model: its variables and its optimizer's."""

    def __init__(self, weight_bytes: int, optimizer_bytes: int = 0):
        import numpy as np

        self.variables = [np.ones(weight_bytes // 4, dtype="float32")]
        self.optimizer = type("Optimizer", (), {"variables": [np.ones(optimizer_bytes // 4, dtype="float32")]})()


def stored(folder: Path) -> list[str]:
    return sorted(path.name for path in folder.iterdir() if cache.is_entry(path)) if folder.exists() else []


def test_one_submission_s_trainings_fill_the_folder_only_to_its_bounds(tmp_path, monkeypatch):
    """A train_model that calls fit again and again, each call a key of its own (the chain), on a
    model near the largest a trainer allows: every call used to be stored, about 280 MB each, until
    the disk was full and the classmates graded after it got 0."""
    monkeypatch.setattr(cache, "SUBMISSION_STORED_BYTES", 10_000)
    trainings = TrainingCache(tmp_path / "trainings")
    kept = [trainings.store(f"{i:064x}", FakeModel(3_000, 1_000), {"loss": [1.0]}) for i in range(5)]
    assert kept == [True, True, False, False, False]  # 4,016 bytes each
    assert cache.folder_bytes(tmp_path / "trainings") <= 10_000

    trainings.next_submission()  # a warm trainer's next submission has bounds of its own
    assert trainings.store(f"{9:064x}", FakeModel(3_000), {"loss": [1.0]})


def test_a_training_too_large_for_a_lesson_or_beyond_the_entries_bound_is_trained_but_not_stored(
        tmp_path, monkeypatch):
    trainings = TrainingCache(tmp_path / "trainings")
    assert not trainings.store(KEY, FakeModel(cache.STORED_ENTRY_BYTES), {"loss": [1.0]})
    assert trainings.cached(KEY) is None and stored(tmp_path / "trainings") == []

    monkeypatch.setattr(cache, "SUBMISSION_STORED_ENTRIES", 3)
    kept = [trainings.store(f"{i:064x}", FakeModel(16), {"loss": [1.0]}) for i in range(5)]
    assert kept == [True, True, True, False, False]  # many small keys: inodes are a disk's too


def test_the_batch_s_folder_stops_growing_at_its_bound_whoever_fills_it(tmp_path, monkeypatch):
    """Several notebooks (one student's, or colluding classmates') each within their own bounds."""
    monkeypatch.setattr(cache, "FOLDER_BYTES", 20_000)
    folder = tmp_path / "trainings"
    for student in range(6):
        TrainingCache(folder).store(f"{student:064x}", FakeModel(4_000, 2_000), {"loss": [1.0]})
    assert len(stored(folder)) == 3 and cache.folder_bytes(folder) <= 20_000


def test_a_training_the_disk_has_no_room_for_is_left_out_and_the_training_stands(tmp_path, monkeypatch):
    import errno

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(cache.np, "savez", full)
    folder = tmp_path / "trainings"
    assert TrainingCache(folder).store(KEY, FakeModel(16), {"loss": [1.0]}) is False
    assert not folder.exists() or list(folder.iterdir()) == []  # nothing half-written left behind


def test_a_disk_short_of_room_for_others_takes_no_training_however_little_the_folder_holds(tmp_path, monkeypatch):
    """FOLDER_BYTES alone is a fixed 4 GiB: on a disk with less free, the students at their own bounds
    could fill it before the folder did."""
    monkeypatch.setattr(cache, "free_bytes", lambda folder: cache.FREE_BYTES + 1_000)
    trainings = TrainingCache(tmp_path / "trainings")
    assert trainings.store(f"{1:064x}", FakeModel(400), {"loss": [1.0]})
    assert not trainings.store(f"{2:064x}", FakeModel(4_000), {"loss": [1.0]})
