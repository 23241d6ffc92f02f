"""The output lock: refused while its holder lives, waited for while only the
children of a killed holder still hold it, and nothing left behind."""

import subprocess
import sys
import time

import pytest

from lorakit.errors import OutputError
from lorakit.locking import exclusive_lock

HOLD = """
import fcntl, os, sys, time
descriptor = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT)
fcntl.flock(descriptor, fcntl.LOCK_EX)
pid = str(os.getpid()) if sys.argv[2] == "self" else sys.argv[2]
os.write(descriptor, (pid + "\\n").encode())
print("held", flush=True)
time.sleep(float(sys.argv[3]))
"""


def _holding(lock_file, pid_written: str, seconds: float) -> subprocess.Popen:
    """A process holding ``lock_file`` for ``seconds`` with ``pid_written`` in it, once it says so."""
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(lock_file), pid_written, str(seconds)],
                              stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "held"
    return holder


def _dead_pid() -> int:
    gone = subprocess.Popen(["true"])
    gone.wait()
    return gone.pid


def test_a_living_holder_refuses_at_once_naming_it(tmp_path):
    lock_file = tmp_path / ".lock"
    holder = _holding(lock_file, "self", 30)
    try:
        started = time.monotonic()
        with pytest.raises(OutputError, match=f"^busy {holder.pid}$"):
            with exclusive_lock(lock_file, in_use="busy {pid}", cannot_write="no {reason}"):
                pass
        assert time.monotonic() - started < 2
    finally:
        holder.kill()
        holder.wait()


def test_the_children_of_a_killed_holder_are_waited_for(tmp_path):
    """kill -9 of a caption job leaves its decoding workers holding the lock
    for a few seconds; a --resume started at once waited for nobody and was refused."""
    lock_file = tmp_path / "out" / ".lock"
    lock_file.parent.mkdir()
    child = _holding(lock_file, str(_dead_pid()), 1.5)
    started = time.monotonic()
    with exclusive_lock(lock_file, in_use="busy {pid}", cannot_write="no {reason}"):
        assert time.monotonic() - started > 0.5 and child.poll() is not None  # it went first
    child.wait()
    assert not lock_file.exists()


def test_folders_made_for_the_lock_go_with_it(tmp_path):
    lock_file = tmp_path / "a" / "b" / ".lock"
    with exclusive_lock(lock_file, in_use="busy {pid}", cannot_write="no {reason}"):
        assert lock_file.is_file()
    assert list(tmp_path.iterdir()) == []
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(OutputError, match=f"^no {blocker} is a file, not a folder$"):
        with exclusive_lock(blocker / ".lock", in_use="busy {pid}", cannot_write="no {reason}"):
            pass
