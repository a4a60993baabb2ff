"""Reading what a process that ran student code wrote: every file bounded, none through a link.

What the sandbox's child leaves behind is hostile input, read as data only:

- every file through ``read_bounded``: opened without following a symbolic link, without blocking
  (a FIFO), refused unless it is a regular file no larger than its bound, and read from that same
  descriptor, at most one byte past the bound — nothing is checked by name and then opened again;
  the folders are opened the same way (``open_folder``), and the files in them relative to the
  folder's descriptor, so a symlinked folder is refused too;
- arrays: ``parse_npy`` checks a ``.npy`` file's header against its size, then parses the bytes
  read with ``numpy.load(allow_pickle=False)``;
- JSON: parsed from bytes already bounded (``load_json``), its nesting bounded and its values
  plain (``plain_json``).

Every refusal is an ``ArtifactError`` that says what was wrong with which file.
"""

from __future__ import annotations

import errno
import io
import json
import math
import os
import stat
import struct
from typing import Any

import numpy as np

from autograder.errors import ArtifactError, ArtifactMissing, ArtifactTooLarge


def _open_flags(directory: bool) -> int:
    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC
    return flags | (os.O_DIRECTORY if directory else os.O_NONBLOCK)


def _os_error(error: OSError, name: str, kind: str, path: str, dir_fd: int | None) -> ArtifactError:
    if error.errno == errno.ENOENT:
        return ArtifactMissing(f"{name} is missing")
    if error.errno in (errno.ELOOP, errno.EMLINK, errno.ENOTDIR):  # O_NOFOLLOW on a link; O_DIRECTORY
        try:  # only to word the refusal: nothing is opened on the strength of this
            link = stat.S_ISLNK(os.lstat(path, dir_fd=dir_fd).st_mode)
        except OSError:
            link = error.errno != errno.ENOTDIR
        return ArtifactError(f"{name} is a symbolic link, not a {kind}" if link else f"{name} is not a {kind}")
    return ArtifactError(f"{name} could not be opened: {error.strerror or error}")


def open_folder(path: str | os.PathLike, *, dir_fd: int | None = None) -> int:
    """A descriptor of the folder ``path`` (relative to ``dir_fd`` if given), refusing a symbolic
    link: the caller opens the files in it with ``dir_fd=`` and closes it with ``os.close``."""
    name = os.fspath(path)
    try:
        return os.open(name, _open_flags(directory=True), dir_fd=dir_fd)
    except OSError as error:
        raise _os_error(error, os.path.basename(name) or name, "folder", name, dir_fd) from None


def read_bounded(path: str | os.PathLike, limit: int, *, dir_fd: int | None = None) -> bytes:
    """The whole content of the regular file ``path`` (relative to ``dir_fd`` if given), at most
    ``limit`` bytes, or ``ArtifactError`` (``ArtifactMissing`` if it does not exist).

    The file is opened once, without following a symbolic link and without blocking, checked with
    ``fstat`` on that descriptor to be a regular file no larger than ``limit``, and read from it,
    at most ``limit + 1`` bytes: a file that grows, or a /proc file that claims size 0, cannot
    make it read more. A FIFO, a device, a socket or a folder is refused without being read.
    """
    name = os.fspath(path)
    shown = os.path.basename(name) or name
    try:
        fd = os.open(name, _open_flags(directory=False), dir_fd=dir_fd)
    except OSError as error:
        raise _os_error(error, shown, "file", name, dir_fd) from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise ArtifactError(f"{shown} is not a regular file")
        if info.st_size > limit:
            raise ArtifactTooLarge(f"{shown} is larger than {limit:,} bytes")
        chunks, total = [], 0
        want = info.st_size + 1  # one read for the whole file and one more that finds its end
        while total <= limit:
            chunk = os.read(fd, min(want, limit + 1 - total))
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
            want = 1024**2
        if total > limit:
            raise ArtifactTooLarge(f"{shown} is larger than {limit:,} bytes")
        return chunks[0] if len(chunks) == 1 else b"".join(chunks)
    except BlockingIOError:
        raise ArtifactError(f"{shown} is not a regular file") from None
    except OSError as error:
        raise ArtifactError(f"{shown} could not be read: {error.strerror or error}") from None
    finally:
        os.close(fd)


def load_json(data: bytes, what: str) -> Any:
    """JSON from bytes already bounded in size; malformed or too deeply nested → ArtifactError."""
    try:
        return json.loads(data)
    except RecursionError:
        raise ArtifactError(f"{what} is nested too deeply") from None
    except (ValueError, UnicodeDecodeError) as error:
        raise ArtifactError(f"{what} is not valid JSON: {str(error)[:200]}") from None


def parse_npy(data: bytes, name: str = "array") -> np.ndarray:
    """A numeric array from the bytes of one ``.npy`` file: its header checked against its size
    before anything is allocated, then ``numpy.load(allow_pickle=False)`` on those bytes."""
    stream = io.BytesIO(data)
    try:
        version = np.lib.format.read_magic(stream)
        if version == (1, 0):
            shape, _, dtype = np.lib.format.read_array_header_1_0(stream)
        elif version == (2, 0):
            shape, _, dtype = np.lib.format.read_array_header_2_0(stream)
        else:
            raise ArtifactError(f"array {name} has an unsupported .npy version {version}")
    except (ValueError, SyntaxError, struct.error) as error:
        raise ArtifactError(f"array {name} is not a .npy file: {str(error)[:200]}") from None
    if dtype.hasobject:
        raise ArtifactError(f"array {name} holds Python objects, which would need allow_pickle: refused")
    if dtype.kind not in "biuf":
        raise ArtifactError(f"array {name} is not numeric")
    if math.prod(shape) * dtype.itemsize != len(data) - stream.tell():
        raise ArtifactError(f"array {name}: its size does not match its header")
    array = np.load(io.BytesIO(data), allow_pickle=False)
    if not isinstance(array, np.ndarray) or array.dtype.kind not in "biuf":
        raise ArtifactError(f"array {name} is not numeric")
    return array


def plain_json(value: Any, what: str, max_depth: int) -> Any:
    """JSON values only (what json.loads gives is already plain; this also bounds the nesting)."""

    def walk(item, depth):
        if depth > max_depth:
            raise ArtifactError(f"{what} is nested too deeply")
        if isinstance(item, dict):
            return {str(k): walk(v, depth + 1) for k, v in item.items()}
        if isinstance(item, list):
            return [walk(v, depth + 1) for v in item]
        if item is None or isinstance(item, (bool, int, float, str)):
            return item
        raise ArtifactError(f"{what} holds a value that is not plain JSON")

    return walk(value, 0)
