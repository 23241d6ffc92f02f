"""An output held by one lorakit process at a time (a run folder, a captions file).

The lock is an advisory ``flock`` on a lock file beside or inside the output,
holding the pid of its holder for the message another process gets. The
lock file goes when the holder ends; a process that opened it meanwhile
holds a lock on a file no longer named, so every holder checks the output
again under its lock rather than trust what it saw before. Where the system
has no flock (Windows) or the file system none (some network mounts),
nothing is locked.
"""

from __future__ import annotations

import contextlib
import os
import time
from pathlib import Path
from typing import Iterator

from lorakit.atomic import pid_exists, unwritable
from lorakit.errors import OutputError

#: How long a lock whose holder died is waited for, while its children let go.
ORPHANS_WAIT_S = 30.0


@contextlib.contextmanager
def exclusive_lock(lock_file: Path, in_use: str, cannot_write: str) -> Iterator[None]:
    """Hold ``lock_file`` while the block runs. Another process holding it
    is an ``OutputError`` of ``in_use`` (``{pid}`` replaced by the holder's
    pid); a lock file that cannot be made, one of ``cannot_write``
    (``{reason}``: why). The folders made for the lock file are removed at
    the end if left empty."""
    try:
        import fcntl
    except ImportError:
        yield
        return
    made = first_missing(lock_file.parent)
    try:
        lock_file.parent.mkdir(parents=True, exist_ok=True)
        descriptor = os.open(lock_file, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        reason = unwritable(lock_file) or exc.strerror
        raise OutputError(cannot_write.replace("{reason}", str(reason))) from None
    try:
        try:
            _lock(fcntl, descriptor)
            os.ftruncate(descriptor, 0)
            os.write(descriptor, f"{os.getpid()}\n".encode())
        except BlockingIOError:
            raise OutputError(in_use.replace("{pid}", _holder(descriptor) or "unknown")) from None
        except OSError:  # a file system without locks: unguarded
            pass
        try:
            yield
        finally:
            lock_file.unlink(missing_ok=True)  # while still held
    finally:
        os.close(descriptor)
        if made is not None:
            remove_if_empty(lock_file.parent, made)


def _lock(fcntl, descriptor: int) -> None:
    """Take the lock, or raise BlockingIOError. A holder killed outright (kill -9)
    leaves its children (data loading workers, forked with the lock) holding it
    until they notice, within seconds: the lock is waited for then."""
    deadline = time.monotonic() + ORPHANS_WAIT_S
    while True:
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            holder = _holder(descriptor)
            if holder is None or not holder.isdigit() or pid_exists(int(holder)) or time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def _holder(descriptor: int) -> str | None:
    """The pid the holder wrote in the lock file."""
    return os.pread(descriptor, 32, 0).decode(errors="replace").strip() or None


def first_missing(path: Path) -> Path | None:
    """The outermost of ``path`` and its parents that does not exist yet."""
    missing = None
    for folder in (path, *path.parents):
        if folder.exists():
            break
        missing = folder
    return missing


def remove_if_empty(folder: Path, outermost: Path) -> None:
    """Remove ``folder`` and its parents up to ``outermost`` while they are empty."""
    for each in (folder, *folder.parents):
        if each.exists():  # a failed run may have removed its folder already
            try:
                each.rmdir()
            except OSError:  # not empty: keep it and what holds it
                return
        if each == outermost:
            return
