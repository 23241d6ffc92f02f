"""Two training loops timed against each other in one process.

Each round runs the hand-written loop, then lorakit's, each on fresh models
that its callable builds; round 0 warms caches and allocators up and is left
out, so machine noise and warm-up hit both loops alike. The medians of the
counted rounds are compared.
"""

from __future__ import annotations

import os
import statistics
from typing import Callable


def alternate(hand: Callable[[], float], lorakit: Callable[[], float], rounds: int, unit: str,
              digits: int) -> tuple[float, float]:
    """Runs both loops `rounds` + 1 times, printing each round's figures in
    `unit` with `digits` decimals; returns the medians (hand, lorakit)."""
    hand_figures, lorakit_figures = [], []
    for round_index in range(rounds + 1):
        hand_figure, lorakit_figure = hand(), lorakit()
        if round_index:
            hand_figures.append(hand_figure)
            lorakit_figures.append(lorakit_figure)
        print(f"round {round_index}{' (warm-up)' if not round_index else ''}: "
              f"hand {hand_figure:.{digits}f} {unit}, lorakit {lorakit_figure:.{digits}f} {unit}")
    return statistics.median(hand_figures), statistics.median(lorakit_figures)


def rotated(items: list, round_index: int) -> list:
    """``items`` in the order of round ``round_index``: each round starts one
    later, so none always runs first (on a colder cache) or last."""
    shift = round_index % len(items)
    return items[shift:] + items[:shift]


def trainer_batches(examples: list, batch_size: int, steps: int) -> list[list]:
    """The first ``steps`` batches lorakit's loop trains on with its default
    seed (its epoch order, epoch after epoch): a hand-written loop given these
    does the same work, batch for batch."""
    from lorakit.batches import EpochOrder
    from lorakit.config import TrainSettings

    order, batches, epoch = EpochOrder(examples, batch_size, TrainSettings().seed), [], 0
    while len(batches) < steps:
        batches += order.batches(epoch)
        epoch += 1
    return batches[:steps]


def cpu_only() -> None:
    """Hide any GPU from this process, before torch is imported: a CPU
    benchmark runs every side on the CPU (bench/gpu.py is the GPU one)."""
    os.environ["CUDA_VISIBLE_DEVICES"] = ""
