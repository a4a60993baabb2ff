"""Reaching a submitted file without a link a student could make or swap (``open_submitted``).

The grader reads every submission through one descriptor that this walk opened, folder by folder
from the root, so that what a student can change on the way (their folders, their links, a copy
root made of their links) never leads the grader to the solution or a classmate's notebook under
the student's name. ``autograder.submission.notebook.read_submitted_bytes`` turns its refusals into
messages.
"""

from __future__ import annotations

import errno
import functools
import os
import stat
from pathlib import Path

from autograder.assignment import SUBMITTED

MAX_LINKS = 40  # in one path, as the kernel allows


def open_submitted(path: Path, *, folder: bool = False) -> int:
    """A descriptor of the file at ``path`` (``folder``: of the folder, a submission's own), reached without
    a link that anyone but the grader could have made or swapped: a student's link, or the student's
    folder swapped for one, would reach the solution or a classmate's notebook under the student's name.

    Each folder on the way is opened from the one before it and never through a link unseen (one
    swapped in since it was looked at fails the open), so nothing changed meanwhile is followed. A
    link on the way is followed only if it is root's or the grader's and lies in a folder only they
    can change (sticky folders such as /tmp count: nobody else can replace it there); the file itself
    is never a link, nor in nbgrader's layout the student's folder or the assignment's in it, whoever
    owns the link (root's ``cp -r`` of a student's link is root's). ``..`` goes back to the folder
    the walk came from, as the kernel's does, and only there: a folder moved elsewhere meanwhile (a
    student's, into /tmp) fails the walk. Hard links are the kernel's to refuse
    (``_hardlinks_protected``), or the walk's where it does not. Raises OSError: ELOOP for a link
    refused or a folder moved, EMLINK for a hard link refused, the error of the step that failed else."""
    full = os.fspath(path) if os.path.isabs(path) else os.path.join(os.getcwd(), path)
    pending = [part for part in full.split("/") if part not in ("", ".")]
    # The names of the path that are the student's: submitted/<student>/<assignment>/<notebook> in
    # nbgrader's layout (its name: ``submitted`` may be the instructor's link to a folder named otherwise),
    # else the file's. Only the path's own names count; a link's target inserts others. Below a folder
    # named ``submitted`` that the walk went through, whatever the path says, no link is followed either.
    own = 3 if len(pending) >= 4 and pending[-4] == SUBMITTED else 1
    if folder:  # submitted/<student>/<assignment>: the notebook's folder
        own = 2 if len(pending) >= 3 and pending[-3] == SUBMITTED else 1
    original = len(pending)  # of the path's own names, those still ahead (always the last of pending)
    handle = os.open("/", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    walked = [_identity(handle)]  # the folders the walk is in, from / down
    inside = None  # where the walk went through a folder named ``submitted``: its depth in ``walked``
    links = 0
    try:
        while pending:
            students = len(pending) == original and (original := original - 1) < own
            name = pending.pop(0)
            info = os.stat(name, dir_fd=handle, follow_symlinks=False)
            if stat.S_ISLNK(info.st_mode):
                links += 1
                if students or inside or links > MAX_LINKS or not _grader_s_link(info, handle):
                    raise OSError(errno.ELOOP, os.strerror(errno.ELOOP), name)
                target = os.readlink(name, dir_fd=handle)
                if target.startswith("/"):
                    top = os.open("/", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
                    os.close(handle)
                    handle, walked = top, [_identity(top)]
                pending[:0] = [part for part in target.split("/") if part not in ("", ".")]
                continue
            opened = _open_next(name, handle, last=not pending and not folder)
            os.close(handle)
            handle = opened
            if name == "..":
                walked = _back_up(handle, walked)
                inside = inside if inside and len(walked) >= inside else None
            elif pending:
                walked.append(_identity(handle))
                inside = inside or (len(walked) if name == SUBMITTED else None)
        return handle
    except BaseException:
        os.close(handle)
        raise


def _open_next(name: str, handle: int, last: bool) -> int:
    """The folder or, ``last``, the file ``name`` in the folder open as ``handle``, never through a link."""
    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | (os.O_NONBLOCK if last else os.O_DIRECTORY)
    try:
        opened = os.open(name, flags, dir_fd=handle)
    except NotADirectoryError:  # swapped for a link since it was looked at, or a file
        if stat.S_ISLNK(os.stat(name, dir_fd=handle, follow_symlinks=False).st_mode):
            raise OSError(errno.ELOOP, os.strerror(errno.ELOOP), name) from None
        raise
    if last and _linked_in(opened, handle):  # the solution itself, linked into a student's folder
        os.close(opened)
        raise OSError(errno.EMLINK, os.strerror(errno.EMLINK), name)
    return opened


def _grader_s_link(link: os.stat_result, folder_handle: int) -> bool:
    """Whether a link is root's or the grader's, in a folder only they can change (a sticky folder
    counts: nobody else can replace the link there)."""
    folder = os.fstat(folder_handle)
    changeable = folder.st_mode & 0o022 and not folder.st_mode & stat.S_ISVTX
    return _trusted(link.st_uid) and _trusted(folder.st_uid) and not changeable


def _trusted(uid: int) -> bool:
    """Root or the grader: the only owners whose links and folders a student cannot have made."""
    return uid in (0, os.geteuid())


def _back_up(handle: int, walked: list) -> list:
    """The walk's folders once ``..`` opened ``handle``: it must be the folder the walk came from (/ is
    its own parent), or the folder it was in was moved meanwhile."""
    came_from = walked[-2] if len(walked) > 1 else walked[0]
    if _identity(handle) != came_from:
        raise OSError(errno.ELOOP, os.strerror(errno.ELOOP), "..")
    return walked[:-1] or walked


def _linked_in(file_handle: int, folder_handle: int) -> bool:
    """Whether the file may be another owner's hard-linked into the folder, where the kernel allows
    that: another owner's file with several links, or in a folder of someone other than root or the
    grader (a student's folder holds the student's files; the solution linked there is its only link
    once the instructor saves it again). Root's collections keep the students' owners in root's folders."""
    file, folder = os.fstat(file_handle), os.fstat(folder_handle)
    foreign = file.st_uid != folder.st_uid and stat.S_ISREG(file.st_mode)
    return (not _hardlinks_protected() and foreign
            and (file.st_nlink > 1 or not _trusted(folder.st_uid)))


@functools.cache
def _hardlinks_protected() -> bool:
    """``fs.protected_hardlinks``: nobody links a file they cannot write (systemd turns it on; the
    kernel's own default is off). Where it is off, a hard link to another owner's file in a folder
    is refused, though `cp -al` collections then are too."""
    try:
        return Path("/proc/sys/fs/protected_hardlinks").read_text().strip() != "0"
    except OSError:
        return False


def _identity(handle: int) -> tuple[int, int]:
    info = os.fstat(handle)
    return info.st_dev, info.st_ino
