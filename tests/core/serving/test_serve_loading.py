"""Loads while serving: an adapter load queued on one base (behind a long
job of its own, say a music clip) and a base found in the served folders
mid-serving hold up the requests to that base only, never the others'
(nor a speech request's search for a voice it names)."""

import shutil
import threading

import httpx
import pytest

from serving_support import rewrite_adapter

SECONDS = 20  # far longer than any resolve of a loaded base takes here


@pytest.fixture
def two_bases(served, tmp_path):
    """A server of its own (bases are never unloaded): one caption adapter, and the vqa demo base."""
    from lorakit.serving.service import Service

    shutil.copytree(served / "caption-a", tmp_path / "cap")
    service = Service([tmp_path], [("vqa", "demo")], rescan_seconds=60)
    service.start()
    yield service, tmp_path
    service.stop()


def _in_thread(call):
    """Run ``call`` in a thread; the thread and what it returned or raised."""
    outcome = {}

    def run():
        try:
            outcome["value"] = call()
        except Exception as exc:  # noqa: BLE001 - handed to the test
            outcome["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, outcome


def test_an_adapter_load_holds_up_only_its_own_base(two_bases, monkeypatch):
    service, folder = two_bases
    loaded = service.workers[("caption", "demo")].loaded
    release, adding = threading.Event(), loaded.add

    def slow_add(entry):
        release.wait(2 * SECONDS)
        adding(entry)

    monkeypatch.setattr(loaded, "add", slow_add)
    shutil.copytree(folder / "cap", folder / "cap-2")
    try:
        scanning, _ = _in_thread(lambda: service.refresh(force=True))  # finds cap-2: its load waits
        other, answer = _in_thread(lambda: service.resolve("vqa", [], None))
        other.join(SECONDS)
        assert not other.is_alive() and "value" in answer, answer  # it used to wait for cap-2's load
        same, mixed = _in_thread(lambda: service.resolve("caption", [("cap-2", 1.0)], None))
        same.join(0.5)
        assert same.is_alive()  # a request for cap-2 waits for it to be in
    finally:
        release.set()
    same.join(SECONDS)
    scanning.join(SECONDS)
    assert not same.is_alive() and "cap-2" in loaded.adapters and mixed["value"][1] == (("cap-2", 1.0),), mixed


def test_a_base_found_mid_serving_loads_without_holding_up_the_others(two_bases, monkeypatch):
    from lorakit.errors import ConfigError
    from lorakit.serving import worker
    from lorakit.serving.service import RequestError

    service, folder = two_bases
    release, load = threading.Event(), worker.LoadedBase.load

    def slow_load(task_name, name, hot_limit=0):
        if name != "slow-base":
            return load(task_name, name, hot_limit)
        release.wait(2 * SECONDS)
        raise ConfigError("slow-base is no model")

    monkeypatch.setattr(worker.LoadedBase, "load", slow_load)
    shutil.copytree(folder / "cap", folder / "other")
    rewrite_adapter(folder / "other", folder / "cap", base="slow-base")
    try:
        scanning, _ = _in_thread(lambda: service.refresh(force=True))  # finds slow-base: a new worker
        other, answer = _in_thread(lambda: service.resolve("caption", [("cap", 1.0)], None))
        other.join(SECONDS)
        assert not other.is_alive() and "value" in answer, answer  # it used to wait for the lock the load held
    finally:
        release.set()
    scanning.join(SECONDS)
    assert not scanning.is_alive()
    with pytest.raises(RequestError, match="could not be loaded: slow-base is no model"):
        service.resolve("caption", [("other", 1.0)], None)


def test_an_unknown_voice_is_refused_while_another_task_s_load_waits(served, tmp_path, monkeypatch):
    # A voice name no adapter or base has makes the speech route read the
    # folders again; it used to wait for every base's loads meanwhile.
    from lorakit.serving.app import create_app
    from lorakit.serving.background import BackgroundServer
    from lorakit.serving.service import Service

    shutil.copytree(served / "caption-a", tmp_path / "cap")
    service = Service([tmp_path], [("voice-clone", "demo")], rescan_seconds=60)
    service.start()
    server = BackgroundServer(create_app(service))
    release = threading.Event()
    try:
        loaded = service.workers[("caption", "demo")].loaded
        adding = loaded.add
        monkeypatch.setattr(loaded, "add", lambda entry: (release.wait(2 * SECONDS), adding(entry)))
        shutil.copytree(tmp_path / "cap", tmp_path / "cap-2")
        scanning, _ = _in_thread(lambda: service.refresh(force=True))  # cap-2's load waits
        asked, reply = _in_thread(lambda: httpx.post(f"{server.url}/v1/audio/speech", timeout=2 * SECONDS, json={
            "model": "tts-1", "input": "Hello.", "voice": "nobody"}))
        asked.join(SECONDS)
        assert not asked.is_alive() and reply["value"].status_code == 400, reply
        assert "no voice 'nobody'" in reply["value"].json()["error"]["message"]
    finally:
        release.set()
        server.stop()
        service.stop()
