"""One thread per base: it loads the base and its adapters, then answers the
base's requests in turn, batching the queued ones that ask for the same mix.

All model calls of a base happen on its thread, so activating one request's
adapters can never change another request's model halfway. The queue is
bounded across all bases (``Capacity``): a request that finds it full is
refused at once (the app answers 503) instead of waiting without end.
"""

from __future__ import annotations

import collections
import concurrent.futures
import dataclasses
import sys
import traceback
import threading
import time
from typing import Any, Callable

from lorakit.predictions import check_records
from lorakit.serving.loaded_base import LoadedBase, Mix


#: Bases load one at a time: model libraries' lazy imports are not safe from
#: two threads at once (a half-imported module). Held by the loading worker
#: alone, so requests to the bases already loaded go on meanwhile.
_ONE_BASE_AT_A_TIME = threading.Lock()


class QueueFull(Exception):
    """Every queue slot is taken; the client should retry later."""


class Stopped(Exception):
    """The server is shutting down: a request it will not answer is told so."""


def _tell_stopped(item: Job | AdapterLoad) -> None:
    """Answer a queued job, or adapter load, that will not run (unless its client gave it up)."""
    if item.future.set_running_or_notify_cancel():
        item.future.set_exception(Stopped("the server is shutting down"))


class Capacity:
    """How many requests may wait or run at once, over all bases."""

    def __init__(self, size: int):
        self.size = size
        self.taken = 0
        self._lock = threading.Lock()

    def take(self) -> None:
        with self._lock:
            if self.taken >= self.size:
                raise QueueFull(f"the server's queue is full ({self.size} requests)")
            self.taken += 1

    def give_back(self) -> None:
        with self._lock:
            self.taken -= 1


@dataclasses.dataclass
class Job:
    """A request's inputs for one base: answered as ``task.predict``'s records,
    or with ``parts`` as each input's parts (``PredictsInParts.input_parts``;
    an input alone for a task without them)."""

    mix: Mix
    options: tuple[tuple[str, Any], ...]  # task option overrides, hashable
    inputs: list[Any]
    parts: bool = False
    future: concurrent.futures.Future = dataclasses.field(default_factory=concurrent.futures.Future)
    #: The base and adapter versions that answered, set before the future's result.
    provenance: dict[str, Any] | None = None

    @property
    def key(self) -> tuple[Any, ...]:
        """Jobs with the same key run as one ``predict`` call."""
        return self.mix, self.options, self.parts


@dataclasses.dataclass
class AdapterLoad:
    """Adapters to load (new or rewritten) and names to unload, queued
    between jobs: the jobs after it may need them."""

    entries: list[Any]
    gone: list[str]
    future: concurrent.futures.Future = dataclasses.field(default_factory=concurrent.futures.Future)


class BaseWorker(threading.Thread):
    """Loads ``task_name``'s base ``base_name`` and serves its jobs."""

    def __init__(self, task_name: str, base_name: str, capacity: Capacity, max_batch: int = 8,
                 on_batch: Callable[[int, float], None] | None = None, hot_mixes: int = 0):
        super().__init__(name=f"lorakit-{task_name}-{base_name}", daemon=True)
        self.task_name, self.base_name = task_name, base_name
        self.capacity, self.max_batch, self.on_batch, self.hot_mixes = capacity, max_batch, on_batch, hot_mixes
        self.loaded: LoadedBase | None = None
        self.error: str | None = None  # why the base could not be loaded
        self.ready = threading.Event()
        self._work: collections.deque[Job | AdapterLoad] = collections.deque()
        self._wake = threading.Condition()
        self._stopping = False

    # -- called from request threads -------------------------------------------

    def submit(self, job: Job, reserved: bool = False) -> concurrent.futures.Future:
        """Queue ``job`` (raises ``QueueFull``); its future gets the records.
        A ``reserved`` job runs on a queue place its request already holds
        (a streamed answer's later parts)."""
        if not reserved:
            self.capacity.take()
            job.future.add_done_callback(lambda _: self.capacity.give_back())
        self._put(job)
        return job.future

    def load_adapters(self, entries: list[Any], gone: list[str] = ()) -> concurrent.futures.Future:
        """Load adapters found (or rewritten) after the start and unload the
        ``gone`` ones, between jobs, in queue order."""
        load = AdapterLoad(entries, list(gone))
        self._put(load)
        return load.future

    def stop(self) -> None:
        """End the thread after the batch in hand; what is still queued is
        answered with ``Stopped``, and so is anything submitted later."""
        with self._wake:
            self._stopping = True
            self._wake.notify()

    def _put(self, item: Job | AdapterLoad) -> None:
        with self._wake:
            if self._stopping:
                _tell_stopped(item)
                return
            self._work.append(item)
            self._wake.notify()

    # -- the thread --------------------------------------------------------------

    def run(self) -> None:
        from lorakit.errors import LorakitError

        try:
            with _ONE_BASE_AT_A_TIME:
                self.loaded = LoadedBase.load(self.task_name, self.base_name, self.hot_mixes)
        except LorakitError as exc:
            self.error = str(exc)
        except Exception as exc:  # noqa: BLE001 - a base that fails to load is reported, not fatal to the server
            self.error = f"{type(exc).__name__}: {exc}"
        self.ready.set()
        while True:
            item = self._next()
            if item is None:
                return
            try:
                if isinstance(item, AdapterLoad):
                    self._load(item)
                elif item:
                    self._answer(item)
            except BaseException as exc:  # noqa: BLE001 - the base's thread must outlive any one item
                # A dead thread would leave these requests, and every later
                # one for the base, waiting forever with their queue places.
                traceback.print_exception(exc)
                for waiting in [item] if isinstance(item, AdapterLoad) else item:
                    if not waiting.future.done():
                        waiting.future.set_exception(exc)

    def _next(self) -> AdapterLoad | list[Job] | None:
        """The next queued item; for a job, it and the queued jobs that share its key."""
        with self._wake:
            while not self._work and not self._stopping:
                self._wake.wait()
            if self._stopping:
                left, self._work = list(self._work), collections.deque()
                for item in left:
                    _tell_stopped(item)
                return None
            first = self._work.popleft()
            if isinstance(first, AdapterLoad):
                return first
            batch = [first]
            for item in list(self._work):
                if len(batch) >= self.max_batch or isinstance(item, AdapterLoad):
                    break  # loads keep their place: jobs after them may need them
                if item.key == first.key:
                    self._work.remove(item)
                    batch.append(item)
            # A job its client gave up (cancelled) is dropped; the others can no longer be cancelled.
            return [job for job in batch if job.future.set_running_or_notify_cancel()]

    def _load(self, load: AdapterLoad) -> None:
        if self.loaded is not None:
            for name in load.gone:
                self.loaded.remove(name)
            for entry in load.entries:
                try:
                    self.loaded.add(entry)
                except Exception as exc:  # noqa: BLE001 - one unusable adapter must not stop the base's thread
                    self.loaded.refused[entry.name] = f"{type(exc).__name__}: {exc}"
        load.future.set_result(None)

    def _answer(self, batch: list[Job]) -> None:
        from lorakit.errors import LorakitError

        started = time.perf_counter()
        try:
            records = self._predict(batch)
            provenance = self.loaded.provenance(batch[0].mix)  # here: a later rewrite may replace an adapter
        except LorakitError:
            if len(batch) == 1:
                batch[0].future.set_exception(sys.exc_info()[1])
                return
            for job in batch:  # one request's bad input must not fail the others
                self._answer([job])
            return
        except BaseException as exc:  # noqa: BLE001 - handed to every waiting request, the thread goes on
            for job in batch:
                job.future.set_exception(exc)
            return
        if self.on_batch is not None:
            self.on_batch(len(batch), time.perf_counter() - started)
        start = 0
        for job in batch:
            job.provenance = provenance
            job.future.set_result(records[start:start + len(job.inputs)])
            start += len(job.inputs)

    def _predict(self, batch: list[Job]) -> list[dict[str, Any]]:
        """One ``predict`` call over the inputs of every job in ``batch``."""
        import torch

        if self.loaded is None:
            raise RuntimeError(f"the base {self.base_name!r} could not be loaded: {self.error}")
        from lorakit.capabilities import PredictsInParts

        first = batch[0]
        task = self.loaded.task_for(first.mix, dict(first.options))
        inputs = [x for job in batch for x in job.inputs]
        if first.parts:
            if not isinstance(task, PredictsInParts):
                return [[x] for x in inputs]
            return [list(task.input_parts(self.loaded.base, x)) for x in inputs]
        with self.loaded.mixed(first.mix) as model, torch.inference_mode():
            return check_records(task.name, task.predict(self.loaded.base, model, inputs), inputs)
