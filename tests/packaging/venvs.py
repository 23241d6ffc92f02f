"""Helpers for the packaging tests: build lorakit's wheel, make virtual
environments, run commands in them.

The environments are made with ``--system-site-packages``: a fresh one
without the system's packages would download torch (hundreds of MB) and the
rest on every run, and the test machines have no network for it. Installing
into such a venv shadows the system's copy of a package, so what the venv
imports is the wheel (or the package installed there), and what "not
installed" means is simulated with an import blocker where a test needs it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path


REPO = Path(__file__).resolve().parents[2]
#: What a wheel of lorakit is built from; the rest of the checkout stays out.
SOURCES = ("pyproject.toml", "README.md", "core", "plugins")


def clean_env(**extra: str) -> dict[str, str]:
    """The environment for a subprocess: no PYTHONPATH (it would put the
    checkout before the venv), pip offline and quiet, hub offline."""
    env = {key: value for key, value in os.environ.items() if key not in ("PYTHONPATH", "LORAKIT_LOAD_PLUGINS")}
    env.update(PIP_NO_INDEX="1", PIP_DISABLE_PIP_VERSION_CHECK="1", HF_HUB_OFFLINE="1", OMP_NUM_THREADS="1")
    env.update(extra)
    return env


def run(*command: str | Path, cwd: Path | None = None, timeout: int = 600, **env: str) -> subprocess.CompletedProcess:
    """Run a command, failing the test with its output if it fails."""
    result = subprocess.run([str(c) for c in command], cwd=cwd, env=clean_env(**env), capture_output=True, text=True,
                            timeout=timeout)
    assert result.returncode == 0, (f"`{' '.join(str(c) for c in command)}` failed ({result.returncode}):\n"
                                    f"{result.stdout[-3000:]}\n{result.stderr[-5000:]}")
    return result


def make_venv(folder: Path) -> Path:
    """A venv that sees the system's packages; returns its python. pip is the
    system's (``python -m pip`` installs into the venv that runs it)."""
    run(sys.executable, "-m", "venv", "--system-site-packages", "--without-pip", folder)
    return folder / "bin" / "python"


def assert_no_ignored_packages(build: subprocess.CompletedProcess) -> None:
    """setuptools warns, one screenful per folder, when package data lies in a
    folder that is not listed as a package; a newcomer's `pip install` prints
    it all. Data folders found as namespace packages keep the build quiet."""
    output = build.stdout + build.stderr
    assert "would be ignored" not in output, f"setuptools warns about package data folders:\n{output[-3000:]}"


def build_wheel(out: Path) -> Path:
    """lorakit's wheel, built from a copy of the sources: an in-place build
    would leave build/ and egg-info in the shared checkout, and a stale
    build/lib would put files deleted from the sources into the wheel."""
    source = out / "source"
    source.mkdir(parents=True)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info", "build", "dist")
    for name in SOURCES:
        path = REPO / name
        if path.is_dir():
            shutil.copytree(path, source / name, ignore=ignore)
        else:
            shutil.copy2(path, source / name)
    built = run(sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-w", out / "dist", ".",
                cwd=source)
    assert_no_ignored_packages(built)
    wheels = sorted((out / "dist").glob("lorakit-*.whl"))
    assert len(wheels) == 1, f"expected one lorakit wheel, found {wheels}"
    return wheels[0]
