"""Running ``python -m lorakit`` on bad input and checking that it fails as a
user should see it: a non-zero exit, no traceback, one ``error:`` line that
names what is wrong."""

import os
import subprocess
import sys
from pathlib import Path


def fails_cleanly(*args: object, names: tuple[str, ...] = (), timeout: int = 300, cwd: Path | None = None) -> str:
    """The one error line of ``lorakit *args`` (run in ``cwd``), which must name each of ``names``."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, "-m", "lorakit", *map(str, args)], capture_output=True, text=True,
                          env=env, timeout=timeout, cwd=cwd)
    return one_error(done, names)


def one_error(done: subprocess.CompletedProcess, names: tuple[str, ...] = ()) -> str:
    """The one error line of a finished ``lorakit`` process, however it was
    started: a non-zero exit, no traceback, and each of ``names`` in it."""
    assert done.returncode != 0, done.stdout + done.stderr
    assert "Traceback" not in done.stderr, done.stderr
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, done.stderr
    for name in names:
        assert name in errors[0], (name, errors[0])
    return errors[0]


def files_under(folder: Path) -> set[str]:
    """Every path under ``folder`` (hidden ones too), relative, to compare before and after."""
    return {str(p.relative_to(folder)) for p in Path(folder).rglob("*")} if Path(folder).exists() else set()


class Payload:
    """Unpickling this runs a shell command that creates ``marker``: a test
    pickles it into a user's file and checks the marker never appears."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))
