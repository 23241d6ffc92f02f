"""Fixtures of the packaging tests: one wheel and one venv with it per module."""

from __future__ import annotations

from pathlib import Path

import pytest

from venvs import build_wheel, make_venv, run


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    return build_wheel(tmp_path_factory.mktemp("wheel"))


@pytest.fixture(scope="module")
def wheel_venv(tmp_path_factory, wheel) -> Path:
    """The python of a venv with the wheel installed (without dependencies:
    they come from the system)."""
    python = make_venv(tmp_path_factory.mktemp("wheel-venv") / "venv")
    # --ignore-installed: the checkout's editable lorakit is visible through
    # the system site-packages and would otherwise count as installed.
    run(python, "-m", "pip", "install", "--quiet", "--no-deps", "--ignore-installed", wheel)
    return python
