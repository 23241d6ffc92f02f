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
        _check_loss(task, *item)
        yield item


def _check_loss(task: Any, group: str, loss: Any) -> None:
    """Refuse, naming the method, a loss the loop cannot step on: a plugin's
    per-example vector or float fails deep inside the loop otherwise. Shape and
    ``requires_grad`` are metadata: no wait for the GPU."""
    import torch

    from lorakit.errors import PluginError

    method = f"training_step ({group} group)" if isinstance(task, SeveralOptimizers) else "loss"
    if not isinstance(loss, torch.Tensor):
        got = f"a {type(loss).__name__}"
    elif loss.dim() != 0:
        got = f"a tensor of shape {list(loss.shape)} (reduce it, e.g. .mean())"
    elif not loss.requires_grad:
        got = "a tensor without gradients (computed under torch.no_grad, or detached, or from frozen weights only)"
    else:
        return
    raise PluginError(f"task {task.name!r}: {method} must return one number as a 0-dim tensor that requires grad; "
                      f"got {got}")


def _one(task: Any, base: Any, model: Any, batch: Any) -> Iterator[tuple[str, Any]]:
    yield "main", task.loss(base, model, batch)  # a generator: the loss is computed inside the settings
