"""Adapters mixed per request on the shared base: the math of weights, and
switching under concurrency without ever touching another request's model."""

import concurrent.futures
import json

import pytest
import torch

from lorakit.apply import load_base, open_with_adapters, read_adapters
from lorakit.config import RunConfig
from lorakit.runs import make_task

from serving_support import probe


def merged_probe(service, task_name, mix):
    """The same mix as ``lorakit caption --adapter A:w ...`` builds it: merged into a fresh base."""
    task = make_task(RunConfig(task=task_name))
    specs = read_adapters([(service.adapters[name].folder, weight) for name, weight in mix])
    if not specs:
        base = load_base(task, "demo")
        task.prepare_base(base, None)
        with torch.inference_mode():
            return task.probe(base, base.model).float()
    adapted = open_with_adapters(task, specs)
    first = make_task(RunConfig(task=task_name, options=specs[0].manifest.options))
    first.prepare_base(adapted.base, None)
    with torch.inference_mode():
        return first.probe(adapted.base, adapted.model).float()


@pytest.mark.parametrize("task_name, names", [("caption", ("caption-a", "styles/caption-b")),
                                             ("voice-clone", ("kauko", "calm"))])
def test_weights_one_and_zero_and_mixes_equal_merged_models(service, task_name, names):
    a, b = names
    alone = probe(service, task_name, ((a, 1.0),))
    base = probe(service, task_name, ())
    assert (alone - base).abs().max() > 1e-2  # the adapter changes the model
    assert torch.allclose(probe(service, task_name, ((a, 0.0),)), base, atol=1e-5)
    assert torch.allclose(alone, merged_probe(service, task_name, ((a, 1.0),)), atol=1e-4)
    mix = ((a, 0.7), (b, 0.5))
    assert torch.allclose(probe(service, task_name, mix), merged_probe(service, task_name, mix), atol=1e-4)
    # Scalings and the active set are put back: the single adapter is unchanged afterwards.
    assert torch.equal(probe(service, task_name, ((a, 1.0),)), alone)


def test_an_adapter_the_base_has_not_loaded_is_named(service):
    """(One the base refused is named with its reason in test_serve_api.)"""
    from lorakit.errors import AdapterError

    loaded = service.workers[("caption", "demo")].loaded
    with pytest.raises(AdapterError, match="'nope' is not loaded"):
        with loaded.mixed((("nope", 1.0),)):
            pass


def test_switching_under_concurrency_equals_sequential_calls(live):
    """Caption requests alternating among the base, each adapter and a mix,
    sent 8 at once (the queue size), get the captions sequential single requests get."""
    import httpx

    from serving_support import png_bytes

    image = png_bytes((200, 40, 40))
    mixes = [[], [{"name": "caption-a"}], [{"name": "styles/caption-b"}],
             [{"name": "caption-a", "weight": 0.6}, {"name": "styles/caption-b", "weight": 0.6}]]

    def ask(mix):
        response = httpx.post(f"{live.url}/v1/captions", files={"image": ("red.png", image, "image/png")},
                              data={"adapters": json.dumps(mix)}, timeout=120)
        assert response.status_code == 200, response.text
        return response.json()["caption"]

    sequential = [ask(mix) for mix in mixes]
    assert len(set(sequential)) >= 2, sequential  # the adapters caption differently
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        together = list(pool.map(ask, mixes * 2))
    assert together == sequential * 2


WORDS = ("one", "two", "three", "four", "five")


def test_queued_requests_for_the_same_mix_run_as_one_batch(service):
    from lorakit.serving.worker import Job

    worker = service.workers[("voice-clone", "demo")]
    batches = []
    worker.on_batch, saved = (lambda size, seconds: batches.append(size)), worker.on_batch
    try:
        with worker._wake:  # the worker cannot take a job until all five are queued
            futures = [worker.submit(Job((("kauko", 1.0),), (), [f"Sentence {word}."])) for word in WORDS]
            other = worker.submit(Job((("calm", 1.0),), (), ["Another voice."]))
        records = [f.result(timeout=120) for f in futures]
        other.result(timeout=120)
    finally:
        worker.on_batch = saved
    assert batches == [5, 1]
    assert [r[0]["text"] for r in records] == [f"Sentence {word}." for word in WORDS]
    assert service.capacity.taken == 0


def test_one_bad_input_in_a_batch_fails_only_its_own_request(service):
    from lorakit.errors import DataError
    from lorakit.serving.worker import Job

    worker = service.workers[("voice-clone", "demo")]
    with worker._wake:
        good = worker.submit(Job((("kauko", 1.0),), (), ["Fine words."]))
        bad = worker.submit(Job((("kauko", 1.0),), (), ["It costs 5 €."]))
    assert good.result(timeout=120)[0]["text"] == "Fine words."
    with pytest.raises(DataError, match="'€'"):
        bad.result(timeout=120)


def test_hot_mixes_are_merged_into_private_copies(service):
    """With hot_limit, a mix asked for twice runs on a merged copy: same
    outputs as the unmerged mix, the shared model's weights untouched, the
    least recently used copy dropped when the limit is reached."""
    loaded = service.workers[("voice-clone", "demo")].loaded
    shared = {name: p.detach().clone() for name, p in loaded.model.named_parameters()}
    mixes = [(("kauko", 1.0),), (("kauko", 0.5), ("calm", 0.5)), (("calm", 1.0),)]
    unmerged = [probe(service, "voice-clone", mix) for mix in mixes]
    loaded.hot_limit = 2
    try:
        for mix, expected in zip(mixes, unmerged):
            assert torch.equal(probe(service, "voice-clone", mix), expected)  # first use: unmerged
            assert mix not in loaded.hot
            assert torch.allclose(probe(service, "voice-clone", mix), expected, atol=1e-4)  # second: the copy
            assert mix in loaded.hot
        assert list(loaded.hot) == mixes[1:]  # the oldest copy went
    finally:
        loaded.hot_limit = 0
        loaded.hot.clear()
        loaded.uses.clear()
    assert all(torch.equal(p, shared[name]) for name, p in loaded.model.named_parameters())


def test_the_same_mix_again_runs_without_switching(service, monkeypatch):
    """A streamed text's sentences are jobs of one mix in a row: the shared
    model stays set to it, so only a change of mix pays for the switch."""
    loaded = service.workers[("voice-clone", "demo")].loaded
    tuner, switches = loaded.model.base_model, []
    original = tuner.set_adapter
    monkeypatch.setattr(tuner, "set_adapter", lambda *args, **kwargs: (switches.append(args), original(*args, **kwargs)))
    kauko, calm = (("kauko", 1.0),), (("calm", 0.5),)
    first = probe(service, "voice-clone", kauko)
    switched = len(switches)
    assert torch.equal(probe(service, "voice-clone", kauko), first) and len(switches) == switched
    probe(service, "voice-clone", calm)
    assert len(switches) > switched
    assert torch.equal(probe(service, "voice-clone", kauko), first)  # and back, exactly
