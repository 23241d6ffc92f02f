"""A hub id on a machine where the Hugging Face Hub gives no answer: a cached
model loads without the hub client's retries (five a file, minutes in all),
a missing one fails at once saying what to do."""

import http.server
import os
import shutil
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from lorakit import hub_offline

REPO = Path(__file__).resolve().parents[2]
DEMO_BLIP = REPO / "plugins" / "lorakit_caption" / "demo_base"
IMAGE = REPO / "samples" / "caption" / "catalog" / "catalog_0000.png"
COMMIT = "0123456789abcdef0123456789abcdef01234567"


def _closed_port_url() -> str:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}"  # nothing listens there now: connections are refused


@pytest.fixture
def answering_url():
    class Quiet(http.server.BaseHTTPRequestHandler):
        def do_HEAD(self):
            self.send_response(404)  # an answer all the same
            self.end_headers()

        def log_message(self, *args):
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Quiet)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_probe_tells_an_answer_from_none(answering_url):
    assert hub_offline._probe(answering_url, 5) is None
    failure = hub_offline._probe(_closed_port_url(), 5)
    assert failure and "Connect" in failure


@pytest.fixture
def fresh_state(monkeypatch):
    from huggingface_hub import constants

    monkeypatch.setattr(hub_offline, "_asked", False)
    monkeypatch.setattr(hub_offline, "_failure", None)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")  # recorded, so what offline mode writes there is undone...
    monkeypatch.delenv("HF_HUB_OFFLINE")  # ...and the tests start without it
    return constants


def test_no_answer_turns_offline_mode_on_once(fresh_state, monkeypatch):
    asked = []
    monkeypatch.setattr(hub_offline, "_probe", lambda *a: asked.append(a) or "ConnectError: refused")
    reason = hub_offline.offline_unless_reachable("owner/model")
    assert reason == "does not answer from this machine (ConnectError: refused)"
    assert fresh_state.is_offline_mode() and os.environ["HF_HUB_OFFLINE"] == "1"
    assert hub_offline.offline_unless_reachable("owner/other") == reason and len(asked) == 1


def test_an_answer_leaves_the_hub_on(fresh_state, monkeypatch, answering_url):
    monkeypatch.setattr(fresh_state, "ENDPOINT", answering_url)
    assert hub_offline.offline_unless_reachable("owner/model") is None
    assert not fresh_state.is_offline_mode() and "HF_HUB_OFFLINE" not in os.environ


def test_offline_mode_set_by_the_user_asks_nothing(fresh_state, monkeypatch):
    monkeypatch.setattr(fresh_state, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(hub_offline, "_probe", lambda *a: pytest.fail("the Hub was asked"))
    assert hub_offline.offline_unless_reachable("owner/model") == "is off (HF_HUB_OFFLINE is set)"


def _hub_cache_with_demo_blip(home: Path) -> None:
    """The demo BLIP as the hub cache lays out a downloaded ``lorakit-tests/tiny-blip``."""
    model = home / "hub" / "models--lorakit-tests--tiny-blip"
    (model / "refs").mkdir(parents=True)
    (model / "refs" / "main").write_text(COMMIT)
    shutil.copytree(DEMO_BLIP, model / "snapshots" / COMMIT)


def _caption(base: str, home: Path) -> subprocess.CompletedProcess:
    # A process of its own: the hub client reads its cache folder and endpoint at import.
    env = dict(os.environ, HF_HOME=str(home), HF_ENDPOINT=_closed_port_url())
    env.pop("HF_HUB_OFFLINE", None)
    return subprocess.run([sys.executable, "-m", "lorakit", "predict", "caption", "--base", base, str(IMAGE)],
                          env=env, capture_output=True, text=True, timeout=300)


def test_cached_hub_model_loads_when_the_hub_gives_no_answer(tmp_path):
    _hub_cache_with_demo_blip(tmp_path)
    done = _caption("lorakit-tests/tiny-blip", tmp_path)
    assert done.returncode == 0, done.stderr
    assert '"caption": "' in done.stdout
    assert "lorakit-tests/tiny-blip: the Hugging Face Hub" in done.stderr
    assert "loading from the local hub cache only" in done.stderr
    assert "Retrying" not in done.stderr
    assert "Loading weights" not in done.stderr, "no download bars where nothing is downloaded"


def test_missing_hub_model_fails_at_once_saying_what_to_do(tmp_path):
    done = _caption("lorakit-tests/no-such-blip", tmp_path)
    assert done.returncode != 0 and "Traceback" not in done.stderr
    assert "lorakit-tests/no-such-blip is not in the local hub cache" in done.stderr
    assert "does not answer from this machine" in done.stderr
    assert "hf download lorakit-tests/no-such-blip" in done.stderr and "--base demo" in done.stderr
    assert "Retrying" not in done.stderr and "warning:" not in done.stderr


def test_offline_imports_print_nothing_of_their_own():
    """peft imports bitsandbytes, which (on CPUs with AVX512-BF16) fetches an
    optional CPU kernel through `kernels`; offline, that printed "Skipping
    publisher trust check ..." on every command."""
    pytest.importorskip("bitsandbytes")
    env = dict(os.environ, HF_HUB_OFFLINE="1")
    done = subprocess.run([sys.executable, "-c", "import lorakit, peft, bitsandbytes"], env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and done.stderr == ""
