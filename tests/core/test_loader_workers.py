"""DataLoader workers where they are spawned (Windows, macOS), emulated on
Linux: each is sent a pickled copy of the task's collate and the base it
reads, which a base on the GPU or with parametrized modules (VITS's weight
norm) cannot give. A clear error says to load data in the training process;
unset, no workers are used there."""

import functools

import pytest
import torch
from lorakit import batches
from lorakit.batches import EpochOrder, default_workers, run_loader
from lorakit.errors import ConfigError


def count(base, examples):
    """A collate reading nothing of its base: the batch's size."""
    return len(examples)


def weight_normed():
    return torch.nn.utils.parametrizations.weight_norm(torch.nn.Linear(2, 2))


def first_batches(loader, n=4):
    taken = []
    for epoch, index, batch in loader:
        taken.append((epoch, index, batch))
        if len(taken) == n:
            return taken


ORDER = EpochOrder(list(range(10)), batch_size=3, seed=1)


def test_spawned_workers_that_cannot_take_the_base_are_a_clear_error(monkeypatch):
    monkeypatch.setattr(batches, "WORKER_START", "spawn")
    collate = functools.partial(count, weight_normed())
    with pytest.raises(ConfigError, match=r"train.num_workers = 1: .*cannot be copied .*parametrized.*"
                                          r"set --train.num_workers 0"):
        run_loader(ORDER, collate, 0, 0, workers=1, pin_memory=False)


def test_workers_take_any_base_where_they_are_forked_and_a_picklable_one_where_spawned(monkeypatch):
    inline = first_batches(run_loader(ORDER, functools.partial(count, None), 0, 2, workers=0, pin_memory=False))
    forked = first_batches(run_loader(ORDER, functools.partial(count, weight_normed()), 0, 2, workers=1,
                                      pin_memory=False))
    monkeypatch.setattr(batches, "WORKER_START", "spawn")
    spawned = first_batches(run_loader(ORDER, functools.partial(count, None), 0, 2, workers=1, pin_memory=False))
    assert inline == forked == spawned == [(0, 2, 3), (0, 3, 1), (1, 0, 3), (1, 1, 3)]


def test_unset_workers_are_used_on_a_gpu_only_where_they_are_forked(monkeypatch):
    monkeypatch.setattr(batches, "WORKER_START", "fork")
    assert (default_workers("cuda"), default_workers("cpu")) == (2, 0)
    monkeypatch.setattr(batches, "WORKER_START", "spawn")
    assert (default_workers("cuda"), default_workers("cpu")) == (0, 0)
