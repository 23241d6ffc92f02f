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
