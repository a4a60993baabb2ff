"""The kit's one atomic writer: what a reader finds is the old version or the new, never half, and
the new one is on the disk before it takes the old one's place."""

from __future__ import annotations

import os

import numpy as np
import pytest

from autograder.files import atomic_folder, atomic_write


def recording(monkeypatch) -> list[str]:
    calls = []
    fsync, rename, replace = os.fsync, os.rename, os.replace
    monkeypatch.setattr(os, "fsync", lambda fd: (calls.append(f"fsync {os.readlink(f'/proc/self/fd/{fd}')}"),
                                                 fsync(fd))[1])
    monkeypatch.setattr(os, "rename", lambda *a: (calls.append("rename"), rename(*a))[1])
    monkeypatch.setattr(os, "replace", lambda *a: (calls.append("replace"), replace(*a))[1])
    return calls


def test_a_folder_is_put_in_place_with_its_files_on_the_disk_and_never_over_another(tmp_path, monkeypatch):
    calls = recording(monkeypatch)
    built = tmp_path / ".key.123"
    built.mkdir()
    (built / "weights.npz").write_bytes(b"w")
    (built / "history.json").write_text("{}")
    assert atomic_folder(built, tmp_path / "key")
    synced = [call.split("/")[-1] for call in calls[:calls.index("rename")] if call.startswith("fsync ")]
    assert {"weights.npz", "history.json", ".key.123"} <= set(synced)
    assert calls[-1] == f"fsync {tmp_path}"  # the rename itself

    second = tmp_path / ".key.456"
    second.mkdir()
    (second / "weights.npz").write_bytes(b"other")
    assert not atomic_folder(second, tmp_path / "key")
    assert (tmp_path / "key" / "weights.npz").read_bytes() == b"w" and not second.exists()


def test_a_file_is_written_with_the_mode_asked_for(tmp_path):
    atomic_write(tmp_path / "passwd", "root:x:0:0\n", mode=0o644)
    assert (tmp_path / "passwd").stat().st_mode & 0o777 == 0o644
    atomic_write(tmp_path / "data.bin", b"\x00\x01")
    assert (tmp_path / "data.bin").read_bytes() == b"\x00\x01"


def test_the_trainings_cache_and_the_sandbox_users_files_go_through_the_atomic_writer(tmp_path, monkeypatch):
    from autograder.sandbox import slots
    from autograder.trainer.cache import TrainingCache

    calls = recording(monkeypatch)

    class Model:
        optimizer = None
        variables = [np.zeros(3, dtype="float32")]

    TrainingCache(tmp_path / "trainings").store("k" * 64, Model(), {"loss": [1.0]})
    assert "rename" in calls and any(call.endswith("weights.npz") for call in calls)
    weights, _, history = TrainingCache(tmp_path / "trainings").cached("k" * 64)
    assert history == {"loss": [1.0]} and weights[0].shape == (3,)

    calls.clear()
    slot = object.__new__(slots.UserSlot)
    slot.uid, slot.gid, slot.etc = 12345, 12345, tmp_path / "etc"
    slot._write_etc()
    assert calls.count("replace") == 3 and calls[0].startswith(f"fsync {tmp_path}/etc/.tmp-")
    assert "sandbox:x:12345:12345:" in (tmp_path / "etc" / "passwd").read_text()
    assert (tmp_path / "etc" / "passwd").stat().st_mode & 0o777 == 0o644


@pytest.mark.parametrize("data", ["text", b"bytes"])
def test_a_failed_replace_leaves_the_old_file_and_no_temporary_one(tmp_path, monkeypatch, data):
    atomic_write(tmp_path / "a", "old")

    def full(*args):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", full)
    with pytest.raises(OSError):
        atomic_write(tmp_path / "a", data)
    assert (tmp_path / "a").read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["a"]
