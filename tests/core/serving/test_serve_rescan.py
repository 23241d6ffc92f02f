"""Served folders that change while the server runs: an adapter rewritten in
place replaces its old version everywhere, one whose folder is gone is unloaded."""

import shutil

import torch

from serving_support import probe, rewrite_adapter, voice_found_behind_a_held_job


def test_a_rewritten_adapter_replaces_its_merged_copy_and_a_removed_one_is_unloaded(service, served):
    loaded = service.workers[("caption", "demo")].loaded
    shutil.copytree(served / "caption-a", served / "swap")
    service.refresh(force=True)
    in_model = set(loaded.model.peft_config)
    mix = (("swap", 1.0),)
    loaded.hot_limit = 1
    try:
        before = probe(service, "caption", mix)
        assert torch.allclose(probe(service, "caption", mix), before, atol=1e-4) and mix in loaded.hot
        rewrite_adapter(served / "swap", served / "styles" / "caption-b")
        service.refresh(force=True)
        assert mix not in loaded.hot  # the merged copy of the old version is gone with it
        after = probe(service, "caption", mix)
        assert torch.equal(after, probe(service, "caption", (("styles/caption-b", 1.0),)))
        assert not torch.allclose(after, before, atol=1e-3)
        assert len(loaded.model.peft_config) == len(in_model)  # the old version's weights went out
    finally:
        loaded.hot_limit = 0
        loaded.hot.clear()
        loaded.uses.clear()
    shutil.rmtree(served / "swap")
    service.refresh(force=True)
    assert "swap" not in loaded.adapters and "swap" not in loaded.refused
    assert len(loaded.model.peft_config) == len(in_model) - 1


def test_removing_the_last_adapter_leaves_the_plain_base(served, tmp_path):
    from peft import PeftModel

    from lorakit.serving.service import Service

    shutil.copytree(served / "caption-a", tmp_path / "only")
    service = Service([tmp_path])
    service.start()
    try:
        loaded = service.workers[("caption", "demo")].loaded
        adapted = probe(service, "caption", (("only", 1.0),))
        with_adapter_off = probe(service, "caption", ())
        assert isinstance(loaded.model, PeftModel)
        shutil.rmtree(tmp_path / "only")
        service.refresh(force=True)
        assert not isinstance(loaded.model, PeftModel) and not loaded.adapters
        assert torch.equal(probe(service, "caption", ()), with_adapter_off)  # the base, unchanged
        assert not torch.allclose(adapted, with_adapter_off, atol=1e-3)
        shutil.copytree(served / "caption-a", tmp_path / "only")  # and it can come back
        service.refresh(force=True)
        assert torch.equal(probe(service, "caption", (("only", 1.0),)), adapted)
    finally:
        service.stop()


def test_concurrent_requests_for_unknown_names_share_one_walk_of_the_folders(service, monkeypatch):
    import concurrent.futures
    import time

    from lorakit.serving import service as service_module
    from lorakit.serving.service import RequestError

    walks = []

    def counted_scan(*args):
        walks.append(1)
        time.sleep(0.5)  # a big folder: the other requests arrive during the walk
        return real_scan(*args)

    real_scan = service_module.scan
    monkeypatch.setattr(service_module, "scan", counted_scan)

    def ask(i):
        time.sleep(0.01 * i)
        try:
            service.resolve("caption", [(f"no-such-adapter-{i}", 1.0)], None)
        except RequestError as exc:
            return exc.status

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        statuses = list(pool.map(ask, range(8)))
    assert statuses == [404] * 8
    assert len(walks) <= 2, len(walks)  # one in flight when they came, at most one more begun after


def test_requests_arriving_together_for_a_new_adapter_all_wait_for_its_load(service, served):
    import concurrent.futures

    shutil.copytree(served / "caption-a", served / "burst")

    def ask(_):
        worker, mix = service.resolve("caption", [("burst", 1.0)], None)  # refused if not loaded yet
        return mix

    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        assert list(pool.map(ask, range(4))) == [(("burst", 1.0),)] * 4


def test_a_base_added_by_a_refresh_does_not_break_a_listing_of_the_bases_in_progress():
    """/healthz and /v1/models list the workers without the service lock
    while a refresh may add a base's worker in another thread."""
    from lorakit.serving.service import Service

    service = Service([], bases=[("no-such-task", "a")])  # bases that fail to load still get a worker
    service.start()
    try:
        listing = iter(service.workers.values())
        next(listing)
        service._worker("no-such-task", "b")
        assert list(listing) == []  # the listing goes on over the bases it began with
        assert sorted(base for _, base in service.workers) == ["a", "b"]
    finally:
        service.stop()


def test_listings_show_a_new_voice_as_loading_while_its_load_waits_behind_a_long_job(live, service, served,
                                                                                    monkeypatch):
    """The page and clients' menus answer at once while a found adapter's
    load is queued behind a job; a request for it waits for the load."""
    import httpx

    def listed():
        return {m["id"]: m for m in httpx.get(f"{live.url}/v1/models", timeout=10).json()["data"]}

    def voices():
        return [v["id"] for v in httpx.get(f"{live.url}/v1/audio/voices", timeout=10).json()["voices"]]

    with voice_found_behind_a_held_job(live, service, served, monkeypatch) as (name, let_go):
        # Waiting for the load would wait for the held job: these would time out.
        models = listed()
        assert (models[name]["loaded"], models[name]["loading"]) == (False, True)
        assert (models["kauko"]["loaded"], models["kauko"]["loading"]) == (True, False)
        assert name in voices() and "kauko" in voices()
        assert name in [r["name"] for r in httpx.get(f"{live.url}/runs", timeout=10).json()["runs"]]
        assert httpx.get(f"{live.url}/runs/{name}/report", timeout=10).status_code == 200
        let_go()
        speech = dict(model="tts-1", voice=name, input="Now loaded.", response_format="wav")
        answer = httpx.post(f"{live.url}/v1/audio/speech", json=speech, timeout=90)
        assert answer.status_code == 200 and answer.headers["content-type"] == "audio/wav"
        assert (listed()[name]["loaded"], listed()[name]["loading"]) == (True, False)
    assert name not in voices()
