"""What Windows lacks or does otherwise, emulated here on Linux: the calls
lorakit makes on every run, save and captions file must not fail there.

- no ``resource`` module, no ``os.statvfs``, no ``os.getloadavg``, no /proc;
- ``os.fsync`` flushes only through a handle that may write the file (a
  read-only one fails with EBADF, as ``_commit`` does there);
- ``os.kill(pid, 0)`` sends Ctrl-C to that process group (signal 0 is
  ``CTRL_C_EVENT``) instead of asking whether the process exists;
- no ``os.O_NOFOLLOW``.
"""

import errno
import fcntl
import os
import shutil
import sys
from pathlib import Path

import pytest
from lorakit import atomic, threads


@pytest.fixture
def windows_fsync(monkeypatch):
    """lorakit on Windows, where ``os.fsync`` refuses read-only descriptors, as ``_commit`` does."""
    fsync = os.fsync

    def commit(fd):
        if fcntl.fcntl(fd, fcntl.F_GETFL) & os.O_ACCMODE == os.O_RDONLY:
            raise OSError(errno.EBADF, "Bad file descriptor")
        fsync(fd)

    monkeypatch.setattr(os, "fsync", commit)
    monkeypatch.setattr(atomic, "WINDOWS", True)


def test_a_folder_is_saved_whole_where_fsync_needs_a_writable_handle(tmp_path, windows_fsync):
    target = tmp_path / "adapter"
    for weights in (b"first", b"second"):  # a new folder, then one replacing it
        with atomic.atomic_dir(target, replace=True) as tmp:
            (tmp / "adapter_model.safetensors").write_bytes(weights)
            (tmp / "nested").mkdir()
            (tmp / "nested" / "lorakit.json").write_text("{}")
        assert (target / "adapter_model.safetensors").read_bytes() == weights
    assert sorted(p.name for p in tmp_path.iterdir()) == ["adapter"]


def test_leftovers_of_a_crash_are_recovered_without_signalling_any_process(tmp_path, monkeypatch):
    """A dead writer's temporaries go, a live one's stay; and no Ctrl-C is sent."""
    import psutil

    sent = []
    monkeypatch.setattr(atomic, "WINDOWS", True)
    monkeypatch.setattr(os, "kill", lambda pid, signal: sent.append((pid, signal)))  # Windows: Ctrl-C to pid
    # What Windows answers (OpenProcess), without os.kill:
    monkeypatch.setattr(psutil, "pid_exists", lambda pid: Path(f"/proc/{pid}").exists())
    dead = max(int(p.name) for p in Path("/proc").iterdir() if p.name.isdigit()) + 10_000
    live = os.getppid()
    target = tmp_path / "adapter"
    target.mkdir()
    for pid in (dead, live):
        (tmp_path / f".adapter.tmp-{pid}-0a1b2c3d").mkdir()
    atomic.recover(target)
    assert sorted(p.name for p in tmp_path.iterdir()) == [f".adapter.tmp-{live}-0a1b2c3d", "adapter"]
    assert sent == []


def test_busy_cores_is_zero_without_proc_or_a_load_average(monkeypatch):
    monkeypatch.setattr(threads, "_cpu_times", lambda cpus: None)  # no /proc/stat
    monkeypatch.delattr(os, "getloadavg")
    monkeypatch.delattr(os, "sched_getaffinity", raising=False)
    assert threads.busy_cores() == 0.0
    assert threads.usable_cores() >= 1


def test_a_hidden_errno_is_explained_without_resource_or_statvfs(tmp_path, monkeypatch):
    """torch's "file write failed" hides its errno: it is explained by the
    free space alone, not replaced by an ImportError."""
    usage = shutil.disk_usage(tmp_path)
    free = {"bytes": 10**9}
    # shutil.disk_usage asks Windows itself (here: os.statvfs, taken away below)
    monkeypatch.setattr(shutil, "disk_usage", lambda path: usage._replace(free=free["bytes"]))
    monkeypatch.setitem(sys.modules, "resource", None)  # `import resource` raises ImportError
    monkeypatch.delattr(os, "statvfs")
    hidden = RuntimeError("[enforce fail at inline_container.cc:672] . PytorchStreamWriter: file write failed")
    assert atomic.no_room(hidden, tmp_path) is None  # room left: some other failure
    free["bytes"] = 0
    assert atomic.no_room(hidden, tmp_path) == "the disk is full"


def test_captions_are_written_beside_images_and_to_a_file_without_o_nofollow(tmp_path, monkeypatch):
    from lorakit_caption.outputs import RecordFile, write_sidecar

    monkeypatch.delattr(os, "O_NOFOLLOW")
    image = tmp_path / "photo.png"
    image.write_bytes(b"")
    write_sidecar(str(image), "a red chair")
    write_sidecar(str(image), "studio light", existing="append")
    assert (tmp_path / "photo.txt").read_text() == "a red chair, studio light\n"
    records = RecordFile(tmp_path / "captions.jsonl", resume=False)
    records.append([{"image": str(image), "caption": "a red chair"}])
    records.close()
    assert '"caption": "a red chair"' in (tmp_path / "captions.jsonl").read_text()
