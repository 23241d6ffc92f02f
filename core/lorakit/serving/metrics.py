"""Prometheus metrics of one server (its own registry, so apps never share counters)."""

from __future__ import annotations

from typing import Any


class Metrics:
    def __init__(self) -> None:
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

        self.registry = CollectorRegistry()
        self.requests = Counter("lorakit_requests", "Requests answered, by route and status code.",
                                ["route", "status"], registry=self.registry)
        self.latency = Histogram("lorakit_request_seconds", "Time from request to answer, by route.", ["route"],
                                 registry=self.registry, buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60))
        self.batch_size = Histogram("lorakit_batch_size", "Requests answered by one model call.",
                                    registry=self.registry, buckets=(1, 2, 3, 4, 6, 8, 12, 16, 32))
        self.queue = Gauge("lorakit_queue_requests", "Requests waiting or running.", registry=self.registry)
        self.adapters = Gauge("lorakit_adapters_loaded", "Adapters loaded, by task.", ["task"], registry=self.registry)
        self.rejected = Counter("lorakit_queue_full", "Requests refused because the queue was full.",
                                registry=self.registry)

    def observe_batch(self, size: int, seconds: float) -> None:
        self.batch_size.observe(size)

    def exposition(self, service: Any) -> bytes:
        from prometheus_client import generate_latest

        self.queue.set(service.capacity.taken)
        counts: dict[str, int] = {}
        for worker in service.workers.values():
            if worker.loaded is not None:
                counts[worker.task_name] = counts.get(worker.task_name, 0) + len(worker.loaded.adapters)
        for task, count in counts.items():
            self.adapters.labels(task).set(count)
        return generate_latest(self.registry)
