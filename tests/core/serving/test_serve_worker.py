"""A base's worker thread when the server stops: no request is left waiting."""

import pytest

from lorakit.serving.worker import BaseWorker, Capacity, Job, Stopped


def test_stopping_answers_what_is_queued_and_refuses_what_comes_later():
    capacity = Capacity(4)
    worker = BaseWorker("no-such-task", "demo", capacity)  # not started yet: its jobs wait in the queue
    queued = [worker.submit(Job((("calm", 1.0),), (), [f"text {i}"])) for i in range(2)]
    load = worker.load_adapters([])
    assert capacity.taken == 2 and not any(f.done() for f in [*queued, load])
    worker.stop()
    worker.run()  # in this thread: the base fails to load, the stop is seen, the queue answered
    assert worker.error
    for future in [*queued, load]:
        with pytest.raises(Stopped, match="shutting down"):
            future.result(timeout=1)
    later = worker.submit(Job((), (), ["late"]))
    with pytest.raises(Stopped):
        later.result(timeout=1)
    assert capacity.taken == 0  # every refused request gave its place back


def test_a_request_given_up_while_queued_is_skipped_and_the_worker_goes_on(monkeypatch):
    """A client that hangs up cancels its queued job (a streamed answer's next
    sentence): the worker drops it instead of answering it, which would
    raise in its thread and leave every later request waiting."""
    import threading

    from lorakit.serving.loaded_base import LoadedBase

    busy, go_on, seen = threading.Event(), threading.Event(), []

    class EchoWorker(BaseWorker):
        def _predict(self, batch):
            seen.extend(x for job in batch for x in job.inputs)
            busy.set()
            go_on.wait(10)
            return [{"echo": x} for job in batch for x in job.inputs]

    class Loaded:
        def provenance(self, mix):
            return {"adapters": [name for name, _ in mix]}

    monkeypatch.setattr(LoadedBase, "load", classmethod(lambda cls, *args: Loaded()))
    capacity = Capacity(4)
    worker = EchoWorker("echo", "demo", capacity)
    worker.start()
    first = worker.submit(Job((), (), ["a"]))
    assert busy.wait(10)
    given_up = worker.submit(Job((("calm", 1.0),), (), ["b"]))
    later = worker.submit(Job((), (), ["c"]))
    assert given_up.cancel()
    go_on.set()
    assert first.result(timeout=10) == [{"echo": "a"}]
    assert later.result(timeout=10) == [{"echo": "c"}]
    assert seen == ["a", "c"] and capacity.taken == 0
    worker.stop()


def test_a_task_answering_fewer_records_than_inputs_is_an_error_not_answers_to_the_wrong_requests(monkeypatch):
    import contextlib

    from lorakit.errors import PluginError
    from lorakit.serving.loaded_base import LoadedBase

    class Short:
        name = "short"

        def predict(self, base, model, inputs):
            return [{"echo": x} for x in inputs[1:]]

    class Loaded:
        base = None

        def task_for(self, mix, options):
            return Short()

        def mixed(self, mix):
            return contextlib.nullcontext(None)

        def provenance(self, mix):
            return {}

    monkeypatch.setattr(LoadedBase, "load", classmethod(lambda cls, *args: Loaded()))
    worker = BaseWorker("short", "demo", Capacity(4))
    worker.start()
    try:
        with pytest.raises(PluginError, match="task 'short': predict returned 1 records for 2 inputs"):
            worker.submit(Job((), (), ["a", "b"])).result(timeout=10)
    finally:
        worker.stop()


def test_a_failure_outside_the_model_call_answers_its_requests_and_the_worker_goes_on(monkeypatch):
    """An exception past predict (an adapter gone when the answer's
    provenance is read) killed the base's thread: its request and every
    later one waited forever, holding their queue places."""
    from lorakit.serving.loaded_base import LoadedBase

    class EchoWorker(BaseWorker):
        def _predict(self, batch):
            return [{"echo": x} for job in batch for x in job.inputs]

    class Loaded:
        refused: dict = {}

        def provenance(self, mix):
            return {"adapters": [{"name": name, "fingerprint": {}["gone"] if name == "gone" else "sha256:0"}
                                 for name, _ in mix]}

        def remove(self, name):
            raise RuntimeError(f"cannot remove {name}")

    monkeypatch.setattr(LoadedBase, "load", classmethod(lambda cls, *args: Loaded()))
    capacity = Capacity(4)
    worker = EchoWorker("echo", "demo", capacity)
    worker.start()
    try:
        broken = worker.submit(Job((("gone", 1.0),), (), ["a"]))
        with pytest.raises(KeyError):
            broken.result(timeout=10)
        unloading = worker.load_adapters([], gone=["x"])
        with pytest.raises(RuntimeError, match="cannot remove x"):
            unloading.result(timeout=10)
        assert worker.submit(Job((("fine", 1.0),), (), ["b"])).result(timeout=10) == [{"echo": "b"}]
        assert capacity.taken == 0
    finally:
        worker.stop()
