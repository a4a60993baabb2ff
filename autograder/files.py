"""The kit's one way of writing a file or a folder that another process may read while it runs.

A reader sees the old version or the new one, never half of one, and the new one is on the disk
before it replaces the old: a grader killed mid-write, or a machine that loses power, leaves
either the earlier result or the new one (the results store, every report, the trainings cache,
the sandbox users' ``/etc`` files).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from pathlib import Path


def real_path(path: Path) -> Path | None:
    """Where ``path`` leads, links followed, or None where no file can be reached by it now (a link
    loop, which ``Path.resolve`` raises RuntimeError for on Python 3.11, or a folder that cannot be
    searched): a student can make either of their own folder at any moment."""
    try:
        return Path(path).resolve()
    except (RuntimeError, OSError):
        return None


def atomic_write(path: Path, data: str | bytes, mode: int | None = None) -> None:
    """Write ``data`` (text as UTF-8) to ``path`` through a temporary file beside it; ``mode``: its
    permissions (else the temporary file's, 0600)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(data.encode("utf-8") if isinstance(data, str) else data)
            out.flush()
            os.fsync(out.fileno())
        if mode is not None:
            os.chmod(temporary, mode)
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise
    _sync_folder(path.parent)


def atomic_folder(built: Path, path: Path) -> bool:
    """Put the folder ``built`` (written beside ``path``) in place as ``path``, its files on the disk
    first. False, and ``built`` removed, when ``path`` exists already (another writer came first)."""
    for entry in built.iterdir():
        if entry.is_file() and not entry.is_symlink():
            handle = os.open(entry, os.O_RDONLY | os.O_NOFOLLOW)
            try:
                os.fsync(handle)
            finally:
                os.close(handle)
    _sync_folder(built)
    try:
        os.rename(built, path)  # unlike os.replace on a folder, never merges into an existing one
    except OSError:
        if not path.is_dir():
            raise
        shutil.rmtree(built, ignore_errors=True)
        return False
    _sync_folder(path.parent)
    return True


def _sync_folder(folder: Path) -> None:
    """The folder's entries on the disk: the rename itself survives a crash."""
    handle = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(handle)
    finally:
        os.close(handle)


def files_below(folder: Path, suffix: str, skipped: frozenset[str] = frozenset(), max_depth: int | None = None,
                left_out: list[Path] | None = None) -> list[Path]:
    """The regular files named ``*suffix`` below ``folder``, sorted, never through a link, nor in a folder named
    in ``skipped``, nor in one more than ``max_depth`` levels down (appended to ``left_out``). Walked with a
    stack of its own: a student's folder nested a thousand deep made ``rglob`` recurse past Python's limit, and
    the RecursionError stopped the whole batch. A folder that cannot be listed is left out, as ``rglob``
    leaves it."""
    found, stack = [], [(folder, 0)]
    while stack:
        current, depth = stack.pop()
        try:
            with os.scandir(current) as entries:
                for entry in entries:
                    if entry.is_dir(follow_symlinks=False):
                        if entry.name in skipped:
                            continue
                        if max_depth is not None and depth >= max_depth:
                            if left_out is not None:
                                left_out.append(current / entry.name)
                            continue
                        stack.append((current / entry.name, depth + 1))
                    elif entry.name.endswith(suffix) and entry.is_file(follow_symlinks=False):
                        found.append(current / entry.name)
        except OSError:
            continue
    return sorted(found)
