"""What the server holds: the served folders, the adapters found in them and
one worker per base; and the resolution of a request's adapters to a worker.

Bases are loaded once each, in their worker threads, at start; an adapter
found later is loaded into its base's worker between requests (a new base
gets a new worker), one rewritten in place replaces its old version, and one
whose folder is gone is unloaded. ``refresh`` reads the folders again, at
most every ``rescan_seconds`` unless a request names an adapter not seen yet.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

from lorakit.serving.catalog import AdapterEntry, Scan, scan
from lorakit.serving.loaded_base import Mix
from lorakit.serving.worker import BaseWorker, Capacity


class RequestError(Exception):
    """A request the server cannot answer as asked: HTTP ``status``, the
    field at fault (``param``) and a message saying what to send instead."""

    def __init__(self, message: str, param: str | None = None, status: int = 400):
        super().__init__(message)
        self.message, self.param, self.status = message, param, status


class Service:
    """The served adapters and bases, and their workers."""

    def __init__(self, paths: list[str | Path], bases: list[tuple[str, str]] = (), queue_size: int = 16,
                 max_batch: int = 8, rescan_seconds: float = 2.0, on_batch: Any = None, hot_mixes: int = 0):
        self.roots = [Path(p).resolve() for p in paths]
        self.extra_bases = list(bases)
        self.capacity = Capacity(queue_size)
        self.max_batch, self.rescan_seconds, self.on_batch = max_batch, rescan_seconds, on_batch
        self.hot_mixes = hot_mixes
        self.adapters: dict[str, AdapterEntry] = {}
        self.broken: dict[str, str] = {}
        self.workers: dict[tuple[str, str], BaseWorker] = {}
        self._scanned_at = -float("inf")  # when the last scan began
        self._lock = threading.Lock()
        # (base, adapter names, load) asked of the workers, until done
        self._loads: list[tuple[tuple[str, str], list[str], Any]] = []

    def start(self) -> None:
        """Find the adapters, start a worker per base, wait for every load."""
        import peft  # noqa: F401 - imported here once: transformers' lazy imports race when threads start them

        for task, base in self.extra_bases:
            self._worker(task, base)
        self.refresh(force=True)

    def stop(self, wait_seconds: float = 30.0) -> None:
        """Stop every worker after its batch in hand, and wait for them (up to
        ``wait_seconds`` in all): a process that exits while a worker thread
        still runs torch can abort ("terminate called without an active exception")."""
        for worker in self.workers.values():
            worker.stop()
        deadline = time.monotonic() + wait_seconds
        for worker in self.workers.values():
            if worker.is_alive():
                worker.join(max(0.0, deadline - time.monotonic()))

    def refresh(self, force: bool = False, wait: bool = True) -> None:
        """Read the served folders again and ask the workers to load what is
        new; with ``wait``, return once every base and load is in (a request
        waits only for its own base's, in ``resolve``). A scan begun after the
        call came answers it too: concurrent requests for unknown names (a
        flood of bad ones) share one walk of the folders."""
        asked = time.monotonic()
        with self._lock:
            recent = self._scanned_at > asked or (not force and asked - self._scanned_at < self.rescan_seconds)
            if not recent:
                self._scanned_at = time.monotonic()
                pending = [item for item in self._loads if not item[2].done()]
                self._loads = pending + self._apply(scan(self.roots, self.adapters))
        if wait:
            for key in list(self.workers):
                self._settle(key)

    def loading(self) -> set[str]:
        """The adapters a scan found whose load is still queued (behind the
        jobs before it, or its base's own load): a request for one waits for
        it; a listing shows it as loading rather than wait."""
        with self._lock:
            return {name for _, names, load in self._loads if not load.done() for name in names}

    def settle_task(self, task: str) -> None:
        """Wait for the bases of ``task`` and their adapter loads (not the other tasks')."""
        for key in [key for key in self.workers if key[0] == task]:
            self._settle(key)

    def _settle(self, key: tuple[str, str]) -> None:
        """Wait until base ``key`` is loaded (or failed to) and the adapter
        loads the scans so far asked of it are in; other bases' loads, which
        may wait behind a long job of theirs, are not waited for."""
        self.workers[key].ready.wait()
        with self._lock:  # a scan under way adds its loads first
            loads = [load for load_key, _, load in self._loads if load_key == key]
        for load in loads:
            load.result()

    def _apply(self, found: Scan) -> list[Any]:
        """Take a scan's adapters: ask each base's worker to load the new and
        rewritten ones and unload those gone; returns the loads asked for."""
        changes: dict[tuple[str, str], tuple[list[AdapterEntry], list[str]]] = {}
        for name, entry in found.adapters.items():
            if self.adapters.get(name) is not entry:  # new, or rewritten in place
                changes.setdefault((entry.task, entry.base), ([], []))[0].append(entry)
        for name, old in self.adapters.items():
            now = found.adapters.get(name)
            if now is None or (now.task, now.base) != (old.task, old.base):  # gone from its base
                changes.setdefault((old.task, old.base), ([], []))[1].append(name)
        self.adapters, self.broken = found.adapters, found.broken
        return [(key, [entry.name for entry in change[0]], self._worker(*key).load_adapters(*change))
                for key, change in changes.items()]

    def _worker(self, task: str, base: str) -> BaseWorker:
        """The worker of a base, started (its base loads in its own thread,
        not under the lock: a new base found mid-serving holds up no request
        to the others) when first named."""
        key = (task, base)
        if key not in self.workers:
            worker = BaseWorker(task, base, self.capacity, self.max_batch, self.on_batch, self.hot_mixes)
            worker.start()
            # A new dict, not a change to the one /healthz or /v1/models may be
            # iterating in another thread right now (without the lock).
            self.workers = {**self.workers, key: worker}
        return self.workers[key]

    # -- resolving a request ------------------------------------------------------

    def bases_of(self, task: str) -> list[BaseWorker]:
        return [w for (t, _), w in self.workers.items() if t == task]

    def resolve(self, task: str, adapters: list[tuple[str, float]], model: str | None,
                aliases: tuple[str, ...] = ()) -> tuple[BaseWorker, Mix]:
        """The worker and mix for a request of ``task`` naming ``adapters``
        (name, weight) and perhaps a base (``model``; ``aliases`` are model
        names that mean "this task's base", such as OpenAI's ``tts-1``)."""
        # Rewritten since the last look (at most rescan_seconds ago)? Trained since?
        self.refresh(force=any(name not in self.adapters for name, _ in adapters), wait=False)
        if model and model.startswith(f"{task}/"):  # a base as /v1/models lists a shared name
            model = model[len(task) + 1:]
        elif model and model not in aliases and (task, model) not in self.workers:
            if not adapters and model not in self.adapters:
                self.refresh(force=True, wait=False)  # an adapter trained since the last look?
            entry = self.adapters.get(model)
            # /v1/models lists adapters as models: one named as `model` is that adapter (at weight 1
            # unless `adapters` weighs it), on its own base.
            if entry is not None and entry.task == task and (not adapters or model in dict(adapters)):
                adapters, model = adapters or [(model, 1.0)], None
        entries = []
        for name, weight in adapters:
            entry = self.adapters.get(name)
            if entry is None:
                raise RequestError(f"no adapter named {name!r}; served {task} adapters: "
                                   f"{', '.join(self.names(task)) or 'none'}", "adapters", 404)
            if entry.task != task:
                raise RequestError(f"adapter {name!r} is a {entry.task!r} adapter, not a {task!r} one", "adapters")
            entries.append(entry)
        if len({e.base for e in entries}) > 1:
            raise RequestError(f"adapters of different bases cannot be mixed: "
                               f"{', '.join(f'{e.name} ({e.base})' for e in entries)}", "adapters")
        if entries:
            base = entries[0].base
            if model and model not in aliases and model != base:
                raise RequestError(f"adapter {entries[0].name!r} was trained on base {base!r}, not {model!r}",
                                   "model")
        else:
            base = self._base_named(task, model, aliases)
        self._settle((task, base))  # its adapters as the scans found them are in
        worker = self.workers[(task, base)]
        if worker.loaded is None:
            raise RequestError(f"the base {base!r} could not be loaded: {worker.error}", "model", 503)
        mix: Mix = tuple((name, float(weight)) for name, weight in adapters)
        try:
            worker.loaded.check_mix(mix)
        except Exception as exc:  # an AdapterError: refused at load, or not mixable
            raise RequestError(str(exc), "adapters") from None
        return worker, mix

    def saved_option(self, task: str, adapters: list[tuple[str, float]], name: str) -> Any:
        """Option ``name`` as the first adapter of a request was saved with
        (what its answers are made with), else the task's default."""
        from lorakit.plugins import get_host

        entry = self.adapters.get(adapters[0][0]) if adapters else None  # None: removed since, by a rescan
        saved = entry.manifest.options if entry else {}
        return saved[name] if name in saved else getattr(get_host().task(task).options_class(), name)

    def _base_named(self, task: str, model: str | None, aliases: tuple[str, ...]) -> str:
        bases = [w.base_name for w in self.bases_of(task)]
        if not bases:
            raise RequestError(f"no {task} model is served: start the server with {task} runs, or --base {task}=BASE",
                               "model", 404)
        if model and model not in aliases:
            other = self.adapters.get(model)
            if model not in bases and other is not None:  # it is served, for another task
                raise RequestError(f"adapter {model!r} is a {other.task!r} adapter, not a {task!r} one; {task} "
                                   f"adapters: {', '.join(self.names(task)) or 'none'}", "model")
            if model not in bases:
                raise RequestError(f"no {task} base or adapter named {model!r}; served bases: {', '.join(bases)}; "
                                   f"adapters: {', '.join(self.names(task)) or 'none'}", "model", 404)
            return model
        if len(bases) != 1:
            raise RequestError(f"name the {task} base in 'model' (served: {', '.join(bases) or 'none'})", "model")
        return bases[0]

    def names(self, task: str) -> list[str]:
        return sorted(name for name, entry in self.adapters.items() if entry.task == task)

    def run_dir(self, name: str) -> Path:
        self.refresh(wait=False)  # a run's files need no adapter loaded
        entry = self.adapters.get(name)
        if entry is None or entry.run_dir is None:
            raise RequestError(f"no run named {name!r}", "name", 404)
        return entry.run_dir
