"""Messages between a submission's code and the kit's trainer: a JSON header and named byte blobs.

The same frames travel over the sandbox's Unix socket (child → grader), over the trainer process's
pipes (grader → trainer), and in memory where the trainer runs in the student's own process. Every
reader bounds what it accepts: the header's size, each blob's size, the number of blobs and their
total, so a peer that lies about a length costs nothing but its own request.

A frame is ``HEADER_LENGTH (8 bytes, big-endian) | header JSON | BLOB_COUNT...`` where the header
names the blobs and their sizes (``"blobs": [[name, size], ...]``) and the blobs follow in order.
"""

from __future__ import annotations

import json
import re
import struct
from typing import Callable

from autograder.errors import FrameError

MAX_HEADER_BYTES = 256 * 1024
MAX_BLOBS = 16
# A header the grader passes on must encode again: Python's JSON encoder recurses, and one nested some 980
# deep, read in a fresh thread, raised RecursionError when re-encoded for the trainer.
MAX_HEADER_DEPTH = 32
BLOB_NAME = re.compile(r"[A-Za-z0-9_.]{1,64}")
_LENGTH = struct.Struct(">Q")


def encode(header: dict, blobs: dict[str, bytes] | None = None) -> bytes:
    blobs = blobs or {}
    header = {**header, "blobs": [[name, len(data)] for name, data in blobs.items()]}
    text = json.dumps(header, allow_nan=True).encode()
    return b"".join([_LENGTH.pack(len(text)), text, *blobs.values()])


def decode(read_exactly: Callable[[int], bytes], max_total: int) -> tuple[dict, dict[str, bytes]]:
    """Read one frame through ``read_exactly(n)``; its blobs together are at most ``max_total`` bytes."""
    (length,) = _LENGTH.unpack(read_exactly(_LENGTH.size))
    if length > MAX_HEADER_BYTES:
        raise FrameError(f"a header of {length} bytes (at most {MAX_HEADER_BYTES})")
    try:
        header = json.loads(read_exactly(length))
    except (ValueError, RecursionError) as error:
        raise FrameError(f"the header is not JSON: {error}") from None
    if not isinstance(header, dict):
        raise FrameError("the header is not an object")
    if not _nested_within(header, MAX_HEADER_DEPTH):
        raise FrameError(f"the header is nested more than {MAX_HEADER_DEPTH} deep")
    listed = header.pop("blobs", [])
    if not (isinstance(listed, list) and len(listed) <= MAX_BLOBS):
        raise FrameError("the list of blobs is malformed")
    sizes = []
    for entry in listed:
        if not (
            isinstance(entry, list) and len(entry) == 2 and isinstance(entry[0], str) and BLOB_NAME.fullmatch(entry[0])
            and type(entry[1]) is int and entry[1] >= 0
        ):
            raise FrameError("a blob is malformed")
        sizes.append((entry[0], entry[1]))
    if sum(size for _, size in sizes) > max_total:
        raise FrameError(f"blobs of more than {max_total} bytes")
    return header, {name: read_exactly(size) for name, size in sizes}


def _nested_within(value, limit: int) -> bool:
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > limit:
            return False
        if isinstance(item, dict):
            stack.extend((inner, depth + 1) for inner in item.values())
        elif isinstance(item, list):
            stack.extend((inner, depth + 1) for inner in item)
    return True


def reader(receive: Callable[[int], bytes]) -> Callable[[int], bytes]:
    """``read_exactly`` over a ``receive(n)`` that may return fewer bytes (a socket, a pipe)."""

    def read_exactly(size: int) -> bytes:
        chunks, left = [], size
        while left:
            chunk = receive(min(left, 1 << 20))
            if not chunk:
                raise FrameError("the peer closed the connection")
            chunks.append(chunk)
            left -= len(chunk)
        return b"".join(chunks)

    return read_exactly


def npz(arrays: list, prefix: str) -> bytes:
    """Arrays as one .npz blob (``{prefix}0``, ``{prefix}1``…) that ``np.load`` reads back as numbers: a
    dtype NumPy has not of its own (ml_dtypes' bfloat16, ``isbuiltin == 2``) goes as float32, which holds
    it exactly, and a model's variable takes it back in its own dtype."""
    import io

    import numpy as np

    buffer = io.BytesIO()
    arrays = [np.asarray(array) for array in arrays]
    np.savez(buffer, **{f"{prefix}{index}": array.astype(np.float32) if array.dtype.isbuiltin == 2 else array
                        for index, array in enumerate(arrays)})
    return buffer.getvalue()
