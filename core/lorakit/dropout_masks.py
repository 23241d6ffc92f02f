"""Dropout keeps its mask as booleans on the CPU, as torch does on a GPU.

In training, torch's dropout keeps its mask for the backward pass. On a GPU
that mask is a 1-byte boolean; on the CPU torch computes dropout as
``input * noise`` and keeps ``noise``, a tensor of the input's dtype: 4
bytes an element in fp32. A base whose own layers drop out then keeps one
such float mask per dropout and step: MusicGen's decoder drops out after
each attention and MLP (p 0.1), 72 masks of the hidden size, 0.59 GB of
the 3.28 GB MusicGen-small keeps at batch 4 with LoRA.

While the trainer runs a forward pass on a CPU, ``bool_dropout_masks`` puts
in ``torch.nn.functional.dropout`` (what ``nn.Dropout`` and models calling
the function reach) a dropout that computes what torch's does (the same
draw from the generator, the same output bit for bit) and keeps its mask as
booleans, turned back into torch's noise in the backward pass: the same
gradients and random stream, a quarter of the mask's bytes. Any other call
(in place, no gradient needed, another device, a tensor subclass, under
saved-tensor hooks) goes to torch's own function: gradient checkpointing
recomputes its forward pass later, with torch's own dropout, and checks that
it keeps what the first pass kept. Being equal to torch's, the function is
harmless to other threads that meet it meanwhile (a torch function mode,
the alternative, would see every torch call of the step, not just dropout's).
"""

from __future__ import annotations

import contextlib
import threading
from typing import Any, Iterator

import torch
import torch.nn.functional as F

from lorakit.lora_inputs import outer_hooks_active

_torch_dropout = F.dropout
_lock = threading.Lock()
_users = 0


class _BoolMaskDropout(torch.autograd.Function):
    """torch's CPU dropout (``noise`` drawn by ``bernoulli_(1 - p)``, divided by
    ``1 - p``, multiplied in), keeping ``noise != 0`` for the backward pass."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, p: float) -> torch.Tensor:
        noise = torch.empty_like(x).bernoulli_(1 - p)
        noise.div_(1 - p)
        ctx.p = p
        ctx.save_for_backward(noise.bool())
        return x.mul(noise)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        (kept,) = ctx.saved_tensors
        noise = kept.to(grad.dtype).div_(1 - ctx.p)  # the values torch's noise held
        return grad.mul(noise), None


def dropout(input: torch.Tensor, p: float = 0.5, training: bool = True, inplace: bool = False) -> torch.Tensor:
    """``torch.nn.functional.dropout``, keeping a boolean mask where torch keeps a float one."""
    if (type(input) in (torch.Tensor, torch.nn.Parameter) and training and not inplace and 0 < p < 1
            and input.device.type == "cpu" and input.is_floating_point() and input.numel()
            and input.requires_grad and torch.is_grad_enabled() and not outer_hooks_active()):
        return _BoolMaskDropout.apply(input, p)
    return _torch_dropout(input, p, training, inplace)


@contextlib.contextmanager
def bool_dropout_masks(device: torch.device, enabled: bool) -> Iterator[None]:
    """Boolean dropout masks for a training forward pass on ``device`` (a CPU
    only: a GPU's dropout keeps booleans itself), unless not ``enabled``."""
    global _users
    if not enabled or device.type != "cpu":
        yield
        return
    with _lock:
        _users += 1
        F.dropout = dropout
    try:
        yield
    finally:
        with _lock:
            _users -= 1
            if not _users:
                F.dropout = _torch_dropout
