"""The order a run's training batches come in, and the one DataLoader that
collates them for the whole run.

Each epoch's order is a function of (seed, epoch) alone, so a resumed run
sees the batches an uninterrupted one would, and every process takes its own
share of each epoch's batches, the same count on each (distributed steps stay
in lockstep).
"""

from __future__ import annotations

import functools
import math
import sys
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Iterator, Sequence

from lorakit.errors import ConfigError

#: How DataLoader workers start. Linux forks them: each shares the base as
#: the training process holds it. Windows and macOS spawn them, which pickles
#: the task's collate, and the base it reads, into every worker: a base on
#: the GPU (Windows shares no CUDA tensor between processes) or with
#: parametrized modules (VITS's weight norm) cannot be pickled.
WORKER_START = "fork" if sys.platform.startswith("linux") else "spawn"


@dataclass
class EpochOrder:
    """This process's batches of every epoch: the data plus replayed retain
    examples, shuffled by (seed, epoch), cut into batches and shared out."""

    examples: Sequence[Any]
    batch_size: int
    seed: int
    world: int = 1
    rank: int = 0
    replay_pool: Sequence[Any] = ()
    replay: float = 0.0

    def epoch_examples(self, epoch: int) -> list[Any]:
        import numpy as np

        rng = np.random.default_rng([self.seed, epoch])
        examples = list(self.examples)
        if self.replay > 0 and self.replay_pool:
            n = round(len(examples) * self.replay / (1 - self.replay))
            picks = rng.choice(len(self.replay_pool), size=n, replace=n > len(self.replay_pool))
            examples += [self.replay_pool[i] for i in picks]
        return [examples[i] for i in rng.permutation(len(examples))]

    def batches(self, epoch: int) -> list[list[Any]]:
        """This process's batches of the epoch (wrapping around at the end)."""
        examples = self.epoch_examples(epoch)
        size = self.batch_size
        batches = [examples[i : i + size] for i in range(0, len(examples), size)]
        per_rank = math.ceil(len(batches) / self.world)
        return [batches[(self.rank + self.world * i) % len(batches)] for i in range(per_rank)]

    @functools.cached_property
    def per_epoch(self) -> int:
        """Batches per epoch on each process (the same every epoch)."""
        return len(self.batches(0))

    def positions(self, epoch: int, index: int) -> Iterator[tuple[int, int]]:
        """(epoch, batch index) from the given position on, epoch after epoch."""
        while True:
            for i in range(index, self.per_epoch):
                yield epoch, i
            epoch, index = epoch + 1, 0


class CollatedBatches:
    """A map-style dataset keyed by (epoch, index) that returns the collated
    batch with its position. In a worker process the collate's own randomness
    (crops, noise) is seeded by the position, so it does not depend on which
    worker made the batch or on where a resumed run started."""

    def __init__(self, order: EpochOrder, collate: Callable[[list[Any]], Any]):
        self.order, self.collate = order, collate
        self._epoch: int | None = None
        self._batches: list[list[Any]] = []

    def __getitem__(self, key: tuple[int, int]) -> tuple[int, int, Any]:
        import torch.utils.data

        epoch, index = key
        if self._epoch != epoch:
            self._epoch, self._batches = epoch, self.order.batches(epoch)
        if torch.utils.data.get_worker_info() is not None:
            _seed_worker(self.order.seed, epoch, index)
        return epoch, index, self.collate(self._batches[index])


def _seed_worker(seed: int, epoch: int, index: int) -> None:
    import random

    import numpy as np
    import torch

    value = int(np.random.SeedSequence([seed, epoch, index]).generate_state(1)[0])
    random.seed(value)
    np.random.seed(value)
    torch.manual_seed(value)


def _as_is(item: Any) -> Any:
    return item


def default_workers(device_type: str) -> int:
    """DataLoader workers unless set: 2 on a GPU, where collate then runs
    beside the training step, if they are forked (``WORKER_START``); none on
    a CPU, where they would only take cores away."""
    return 2 if device_type == "cuda" and WORKER_START == "fork" else 0


def run_loader(order: EpochOrder, collate: Callable[[list[Any]], Any], epoch: int, index: int,
               workers: int, pin_memory: bool) -> Iterable[Any]:
    """One DataLoader for the rest of the run, starting at (epoch, index):
    worker processes (when ``workers`` > 0) are started once, not per epoch,
    and collate ahead of the training step."""
    import torch
    from torch.utils.data import DataLoader

    # A private generator keeps the DataLoader from drawing on the global
    # RNG, which a resumed run must find exactly as it was.
    loader = DataLoader(
        CollatedBatches(order, collate),
        batch_size=None,
        sampler=order.positions(epoch, index),
        collate_fn=_as_is,
        num_workers=workers,
        pin_memory=pin_memory,
        prefetch_factor=2 if workers else None,
        generator=torch.Generator().manual_seed(order.seed),
        multiprocessing_context=WORKER_START if workers else None,
    )
    if not workers or WORKER_START == "fork":
        return loader
    try:
        return iter(loader)  # spawns the workers, each sent a pickled copy of the collate and its base
    except Exception as exc:  # noqa: BLE001 - whatever pickling raised is the reason
        reason = (str(exc).strip().splitlines() or [""])[0].split(". ")[0].rstrip(".")  # its first sentence
        raise ConfigError(f"train.num_workers = {workers}: on this system data loading workers start with a "
                          f"copy of the task's base, and this one cannot be copied ({type(exc).__name__}: "
                          f"{reason}); set --train.num_workers 0") from None
