"""Write files and folders so that a crash or a full disk leaves either the old or the new version, never half of one.

A folder ``X`` is written (``atomic_dir``) in four steps:

1. everything goes into ``.X.tmp-PID-RAND``, whose files and itself are then fsynced;
2. an existing ``X`` is renamed to ``.X.old-PID-RAND`` (the parent fsynced);
3. the temporary folder is renamed to ``X`` (the parent fsynced);
4. ``.X.old-*`` is removed.

``X`` only ever comes from the rename of a finished temporary folder (3), and
``.X.old-*`` only from the rename of ``X`` (2), so both are always complete.
If ``X`` is missing while a dead process's ``.X.old-*`` is there, that
process died between 2 and 3: ``recover`` renames it back. Everything else a
dead process left beside ``X`` is garbage, removed by ``recover``, which the
next write to ``X`` (and every resume) runs first. A name carries its
writer's pid, so the temporaries of a process still running are never touched.

A write that fails because the disk is full (or a quota or ``ulimit -f`` is
hit) removes its temporaries and raises ``DiskFull``, an ``OutputError``
naming the path.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import secrets
import shutil
from pathlib import Path
from typing import Iterator

from lorakit.errors import DiskFull, OutputError

#: The errnos of a write that found no room, and how a user would say it.
_NO_ROOM = {errno.ENOSPC: "the disk is full", errno.EFBIG: "the file-size limit (ulimit -f) was reached",
            errno.EDQUOT: "the disk quota is used up"}
#: The same, as libraries that hide the errno spell it (safetensors' Rust: "os error 28",
#: "Os { code: 28, ..."; C's strerror).
_NO_ROOM_TEXTS = {"no space left on device": errno.ENOSPC, "file too large": errno.EFBIG,
                  "disk quota exceeded": errno.EDQUOT}
_ERRNO_TEXT = re.compile(r"(?:os error|\bcode:)\s*(\d+)")
_TEMP = re.compile(r"\.(tmp|old)-(\d+)-[0-9a-f]+")
#: Temporaries this process is writing now (a dead process of the same pid left the others).
_LIVE: set[str] = set()
#: Windows flushes and asks after processes otherwise (see the functions using it).
WINDOWS = os.name == "nt"


def unwritable(path: Path, folder: bool = False) -> str | None:
    """Why nothing can be written at ``path`` as a file (with ``folder``, as a
    folder): a folder (a file) is there, or a file stands where a folder on the
    way should be; None when it can be tried."""
    path = Path(path)
    if path.exists() and path.is_dir() != folder:
        return f"{path} is a {'file' if folder else 'folder'}"
    for parent in path.parents:
        if parent.exists():
            return None if parent.is_dir() else f"{parent} is a file, not a folder"
    return None


def check_writable(path: Path, option: str | None = None, folder: bool = False) -> None:
    """``unwritable`` as one error naming the path (and the option that gave
    it), and a place that takes nothing new (no permission, a read-only disk,
    /proc) refused too: said before the work whose result would go there.
    That is tried, by making and removing the temporary a write would make
    first: permissions alone do not tell it (root may write anywhere they say)."""
    _check_shape(path, option, folder)
    path = Path(path)
    first = next(p for p in (path, *path.parents) if p.parent.exists())  # the first of them a write makes
    # An existing path is not tried: a folder of clips is written inside, and
    # the parent of a folder one may write in can be read-only.
    if not first.exists():
        with _refused_as_output_error(path, option):
            probe = _new_temp(first, "tmp", os.mkdir)
            os.rmdir(probe)
            _LIVE.discard(str(probe))


def _check_shape(path: Path, option: str | None = None, folder: bool = False) -> None:
    problem = unwritable(path, folder)
    if problem:
        where, hint = (f"{option} {path}", f"; choose another {option}") if option else (str(path), "")
        raise OutputError(f"cannot write {where}: {problem}{hint}")


@contextlib.contextmanager
def atomic_dir(target: Path, replace: bool = False) -> Iterator[Path]:
    """Yield a temporary folder beside ``target``; rename it to ``target`` on success.

    On any error the temporary folder is removed and ``target`` is untouched.
    With ``replace``, an existing ``target`` is swapped out only after the new
    one is complete.
    """
    target = Path(target)
    _check_shape(target, folder=True)
    with _refused_as_output_error(target):
        target.parent.mkdir(parents=True, exist_ok=True)
        recover(target)
        tmp = _new_temp(target, "tmp", os.mkdir)
    old = None
    try:
        yield tmp
        _shared_modes(tmp)
        _fsync_tree(tmp)
        if replace and target.exists():
            old = _temp_name(target, "old")
            _LIVE.add(str(old))
            os.replace(target, old)
            _fsync_dir(target.parent)
        os.replace(tmp, target)
        _fsync_dir(target.parent)
    except BaseException as exc:
        if old is not None and old.exists() and not target.exists():
            os.replace(old, target)  # the swap failed half-way: the previous copy goes back
        reason = no_room(exc, tmp)
        shutil.rmtree(tmp, ignore_errors=True)
        if reason:
            raise DiskFull(reason, target) from None
        raise
    finally:
        _LIVE.discard(str(tmp))
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
            _LIVE.discard(str(old))


def atomic_write_text(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file, an fsync and a rename."""
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file, an fsync and a rename."""
    path = Path(path)
    _check_shape(path)
    with _refused_as_output_error(path):
        path.parent.mkdir(parents=True, exist_ok=True)
        recover(path)
        tmp = _new_temp(path, "tmp", _create_file)
    try:
        with open(tmp, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
        _fsync_dir(path.parent)
    except BaseException as exc:
        reason = no_room(exc, tmp)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        if reason:
            raise DiskFull(reason, path) from None
        raise
    finally:
        _LIVE.discard(str(tmp))


def recover(target: Path) -> None:
    """Clear up what a killed writer left beside ``target``: when it died
    between the two renames (``target`` missing, its previous copy in
    ``.NAME.old-*``), that copy is renamed back; the temporaries of dead
    processes are removed. Those of running processes are left alone."""
    target = Path(target)
    stale = _stale_temporaries(target)
    if not stale:
        return
    olds = [p for kind, p in stale if kind == "old"]
    if olds and not os.path.lexists(target):
        # Several processes may recover at once (every rank of a resumed
        # run): one rename wins, the others find the copy gone.
        with contextlib.suppress(FileNotFoundError):
            os.replace(max(olds, key=_mtime), target)
            _fsync_dir(target.parent)
    for _, leftover in stale:
        if leftover.is_dir() and not leftover.is_symlink():
            shutil.rmtree(leftover, ignore_errors=True)
        else:
            with contextlib.suppress(FileNotFoundError):
                leftover.unlink()


def no_room(exc: BaseException, where: Path | None = None) -> str | None:
    """Why a write failed, in words, when it failed for want of space (a
    full disk, a quota, a file-size limit); None for any other failure.
    ``where``: the file or folder written, looked at when the error hides
    its errno (torch's "file write failed")."""
    chain, seen = [], exc
    while seen is not None and len(chain) < 10:
        chain.append(seen)
        seen = seen.__cause__ or seen.__context__
    for error in chain:
        if isinstance(error, OSError) and error.errno in _NO_ROOM:
            return _NO_ROOM[error.errno]
        text = str(error).lower()
        for needle, code in _NO_ROOM_TEXTS.items():
            if needle in text:
                return _NO_ROOM[code]
        for code in _ERRNO_TEXT.findall(text):
            if int(code) in _NO_ROOM:
                return _NO_ROOM[int(code)]
    if where is not None and any("write failed" in str(error).lower() for error in chain):
        return _no_room_at(Path(where))
    return None


def _no_room_at(where: Path) -> str | None:
    """A failed write under ``where`` whose errno is lost: a file there at
    the size limit, or a disk with (nearly) no space left, explains it."""
    try:
        import resource

        limit = resource.getrlimit(resource.RLIMIT_FSIZE)[0]
        limited = limit != resource.RLIM_INFINITY
    except ImportError:  # Windows: no file size limit to have hit
        limited = False
    if limited:
        files = [where] if where.is_file() else [p for p in where.rglob("*") if p.is_file()]
        if any(p.stat().st_size >= limit for p in files):
            return _NO_ROOM[errno.EFBIG]
    with contextlib.suppress(OSError):
        if shutil.disk_usage(where if where.exists() else where.parent).free < 1 << 20:
            return _NO_ROOM[errno.ENOSPC]
    return None


@contextlib.contextmanager
def _refused_as_output_error(target: Path, option: str | None = None) -> Iterator[None]:
    """A place that takes no new file or folder (no permission, a read-only
    disk, a system folder such as /proc) as one error naming ``target``."""
    try:
        yield
    except OSError as exc:
        reason = no_room(exc)
        if reason:
            raise DiskFull(reason, target) from None
        inside = next((p for p in target.parents if p.exists()), target.parent)
        where, hint = (f"{option} {target}", f"another {option}") if option else (str(target), "a place")
        raise OutputError(f"cannot write {where}: {inside} takes no new files or folders ({exc.strerror or exc}); "
                          f"choose {hint} where you can write") from None


# -- temporaries ------------------------------------------------------------------------


def _temp_name(target: Path, kind: str) -> Path:
    return target.with_name(f".{target.name}.{kind}-{os.getpid()}-{secrets.token_hex(4)}")


def _new_temp(target: Path, kind: str, make) -> Path:
    """A fresh temporary path beside ``target``, made by ``make`` (a folder or
    a file) with the permissions the umask gives (0755 / 0644 under 022), not
    mkdtemp's 0700 or mkstemp's 0600: an adapter is meant to be shared."""
    while True:
        path = _temp_name(target, kind)
        try:
            make(path)
        except FileExistsError:
            continue
        _LIVE.add(str(path))
        return path


def _mtime(path: Path) -> int:
    try:
        return path.stat().st_mtime_ns
    except FileNotFoundError:
        return -1


def _create_file(path: Path) -> None:
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))


def _stale_temporaries(target: Path) -> list[tuple[str, Path]]:
    """(kind, path) of every ``.NAME.tmp-*`` / ``.NAME.old-*`` beside ``target`` whose writer is gone."""
    prefix = f".{target.name}"
    try:
        names = os.listdir(target.parent)
    except (FileNotFoundError, NotADirectoryError):
        return []
    found = []
    for name in names:
        match = _TEMP.fullmatch(name[len(prefix):]) if name.startswith(prefix) else None
        path = target.parent / name
        if match and str(path) not in _LIVE and not _running(int(match.group(2))):
            found.append((match.group(1), path))
    return found


def _running(pid: int) -> bool:
    """Whether ``pid`` is a running process other than this one (this one's
    own temporaries in flight are in ``_LIVE``; others with its pid are a dead
    namesake's)."""
    return pid != os.getpid() and pid_exists(pid)


def pid_exists(pid: int) -> bool:
    """Whether a process ``pid`` exists, another user's too; True when that
    cannot be told (its files are left alone)."""
    if WINDOWS:  # there os.kill(pid, 0) sends Ctrl-C: signal 0 is CTRL_C_EVENT
        import psutil

        return psutil.pid_exists(pid)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # PermissionError: another user's process
        return True
    return True


# -- durability -------------------------------------------------------------------------


def _shared_modes(folder: Path) -> None:
    """Give every file under ``folder`` the mode the umask gives a new file
    (0644 under 022): safetensors 0.8 writes its files 0600, so an adapter or
    merged model was unreadable to the group it is shared with. The folder
    itself was made with the umask's mode, from which the file mode follows."""
    if WINDOWS:  # no such modes there
        return
    mode = folder.stat().st_mode & 0o666
    for root, _, files in os.walk(folder):
        for name in files:
            path = os.path.join(root, name)
            if not os.path.islink(path) and os.stat(path).st_mode & 0o777 != mode:
                os.chmod(path, mode)


def _fsync_tree(folder: Path) -> None:
    """Every file and folder under ``folder`` on the disk, before a rename makes it visible."""
    for root, _, files in os.walk(folder):
        for name in files:
            path = os.path.join(root, name)
            if not os.path.islink(path):
                # Windows flushes a file only through a handle that may write it.
                fd = os.open(path, os.O_RDWR if WINDOWS else os.O_RDONLY)
                try:
                    os.fsync(fd)
                finally:
                    os.close(fd)
        _fsync_dir(Path(root))


def _fsync_dir(folder: Path) -> None:
    """A folder's entries (a rename in it) on the disk. Some platforms and
    file systems cannot fsync a folder: there it is skipped."""
    if WINDOWS:
        return
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    except OSError as exc:
        if exc.errno not in (errno.EINVAL, errno.ENOTSUP, errno.EBADF):
            raise
    finally:
        os.close(fd)
