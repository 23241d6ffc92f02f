"""For the tests of what LoRA layers keep for the backward pass: one measured
training step, and a model run under non-reentrant activation checkpointing
(as ``--train.gradient_checkpointing`` runs each block of a Hugging Face base)."""

import torch
from torch import nn
from torch.utils.checkpoint import checkpoint

from lorakit.planning import LiveTensors


def measured_step(model, x, autocast: bool = False, seed: int = 5):
    """Loss, gradients, bytes kept for the backward pass, and the next random
    draw, of one step (in CPU bf16 autocast if ``autocast``)."""
    torch.manual_seed(seed)
    model.train()
    with LiveTensors() as meter:
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
            loss = model(x)
        kept = meter.live
        loss.backward()
    grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.requires_grad}
    model.zero_grad(set_to_none=True)
    return loss.detach(), grads, kept, torch.rand(3)


class Checkpointed(nn.Module):
    def __init__(self, inner: nn.Module):
        super().__init__()
        self.inner = inner

    def forward(self, x):
        return checkpoint(self.inner, x, use_reentrant=False)
