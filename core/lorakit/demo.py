"""Pretraining tiny demo bases: the full-model loop the demo scripts share.

Demo bases are small models of the real classes, trained from scratch by
scripts in the repo so that tests and the README run offline. This is not
the LoRA loop (that is ``lorakit.trainer``): every weight trains.
"""

from __future__ import annotations

from typing import Any, Callable


def pretrain_on_tensors(model: Any, data: dict[str, Any], steps: int, lr: float, batch_size: int, seed: int,
                        log: Callable[[str], Any] = print, log_every: int = 200) -> float:
    """Train every weight of ``model`` on the batched tensors ``data`` (AdamW,
    warmup then linear decay, reshuffled each pass); returns the final loss."""
    import torch

    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01)
    warmup = max(1, steps // 10)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: min(1.0, (s + 1) / warmup) * (steps - s) / steps)
    generator = torch.Generator().manual_seed(seed)
    count = next(iter(data.values())).shape[0]  # every tensor holds one row per example
    order, position, loss = torch.randperm(count, generator=generator), 0, None
    model.train()
    for step in range(steps):
        if position + batch_size > count:
            order, position = torch.randperm(count, generator=generator), 0
        index = order[position : position + batch_size]
        position += batch_size
        loss = model(**{key: value[index] for key, value in data.items()}).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        schedule.step()
        if step % log_every == 0 or step == steps - 1:
            log(f"step {step:5d}  loss {loss.item():.4f}")
    model.eval()
    return float(loss.item())
