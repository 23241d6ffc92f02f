"""Shared fixtures: small thread counts, the toy tasks, temporary data."""

import atexit
import os
import shutil
import sys
import tempfile
from pathlib import Path

import pytest
import torch

# Two busy processes on two cores can slow a step 50-fold: keep tests lean
# (and single-threaded when OMP_NUM_THREADS says so). Under pytest-xdist
# (`-n 2`, as the README runs the suite) the workers share the cores: one
# thread each, and OMP_NUM_THREADS=1 for the runs and commands they start.
if int(os.environ.get("PYTEST_XDIST_WORKER_COUNT") or 1) > 1:
    os.environ["OMP_NUM_THREADS"] = "1"
torch.set_num_threads(min(2, int(os.environ.get("OMP_NUM_THREADS") or 2)))

sys.path.insert(0, str(Path(__file__).parent))

# Caches (base fingerprints, music codes, transcripts) go to a folder of this
# test session, not the user's ~/.cache, and leave with the session.
if "LORAKIT_CACHE" not in os.environ:
    os.environ["LORAKIT_CACHE"] = tempfile.mkdtemp(prefix="lorakit-test-cache-")
    atexit.register(shutil.rmtree, os.environ["LORAKIT_CACHE"], ignore_errors=True)

import toy_plugin  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def toy_host():
    """The process-wide plugin host with the toy tasks (toy, toy-pair) added."""
    from lorakit.plugins import get_host

    host = get_host()
    host.add_plugin(toy_plugin, "toy-tests")
    toy_plugin.INTERRUPTED.clear()  # each test's runs may be interrupted once
    return host


@pytest.fixture
def toy_data(tmp_path):
    return toy_plugin.write_toy_data(tmp_path / "toy-data")


@pytest.fixture(autouse=True)
def hub_mode_of_each_test_its_own():
    """A test that loads a hub id on a machine without network turns the hub
    client's offline mode on for its process (lorakit.hub_offline): undone
    after it, so no later test runs in a mode it did not ask for."""
    from huggingface_hub import constants

    from lorakit import hub_offline

    before = (constants.HF_HUB_OFFLINE, os.environ.get("HF_HUB_OFFLINE"), hub_offline._asked, hub_offline._failure)
    yield
    constants.HF_HUB_OFFLINE, variable, hub_offline._asked, hub_offline._failure = before
    if variable is None:
        os.environ.pop("HF_HUB_OFFLINE", None)
    else:
        os.environ["HF_HUB_OFFLINE"] = variable
