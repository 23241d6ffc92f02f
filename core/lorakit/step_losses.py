"""A training step's losses, as the trainer, the planner and the benchmarks
run them: one by one, each computed inside the forward pass's settings
(autocast, boolean dropout masks), while what the caller does between them
(a backward pass, an optimizer step) runs outside. A GAN's generator loss is
computed only after the discriminator has stepped, so the losses cannot be
made together first."""

from __future__ import annotations

from typing import Any, Callable, ContextManager, Iterator

from lorakit.capabilities import SeveralOptimizers


def step_losses(task: Any, base: Any, model: Any, batch: Any,
                settings: Callable[[], ContextManager[Any]]) -> Iterator[tuple[str, Any]]:
    """``(group, loss)`` for each optimizer group in turn: a
    ``SeveralOptimizers`` task's ``training_step``, else ``("main",
    task.loss(...))``; each computed inside a fresh ``settings()``."""
    losses = task.training_step(base, model, batch) if isinstance(task, SeveralOptimizers) else _one(task, base, model, batch)
    while True:
        with settings():
            item = next(losses, None)
        if item is None:
            return
        yield item


def _one(task: Any, base: Any, model: Any, batch: Any) -> Iterator[tuple[str, Any]]:
    yield "main", task.loss(base, model, batch)  # a generator: the loss is computed inside the settings
