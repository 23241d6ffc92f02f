"""LoRA dropout that keeps no copy of its input for the backward pass.

peft computes ``lora_B(lora_A(dropout(x)))``. In training every adapted layer
then keeps its own dropped copy of its input, and the mask, until the
backward pass: on the CPU the mask is a float tensor, so 8 bytes per input
element and layer, as much as all of a BLIP's other activations together
(0.93 GB of 3.3 GB for BLIP-base at batch 4). Here the dropout moves into
``lora_A`` and the two run under non-reentrant checkpointing: only ``x`` is
saved, which the layer's other users keep anyway, and the backward pass
redraws the same mask from the random state saved with it. Outputs,
gradients and the random stream are those of peft's own path; the cost is
one recomputed rank-r projection per layer.
"""

from __future__ import annotations

from typing import Any

import torch
from torch.nn.functional import dropout
from torch.utils.checkpoint import checkpoint


class _DropoutInside:
    """Mixed into a ``lora_A`` layer's class: applies its adapter's dropout
    first, recomputed in the backward pass when training."""

    dropout_p: float

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training:
            return super().forward(x)
        if not torch.is_grad_enabled():
            return self._dropped_forward(x)
        return checkpoint(self._dropped_forward, x, use_reentrant=False)

    def _dropped_forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(dropout(x, self.dropout_p, True))


class DropoutInsideLinear(_DropoutInside, torch.nn.Linear):
    pass


class DropoutInsideConv1d(_DropoutInside, torch.nn.Conv1d):
    pass


class DropoutInsideConv2d(_DropoutInside, torch.nn.Conv2d):
    pass


class DropoutInsideConv3d(_DropoutInside, torch.nn.Conv3d):
    pass


_SWAPS = {torch.nn.Linear: DropoutInsideLinear, torch.nn.Conv1d: DropoutInsideConv1d,
          torch.nn.Conv2d: DropoutInsideConv2d, torch.nn.Conv3d: DropoutInsideConv3d}


def recompute_lora_dropout(model: Any) -> Any:
    """Move each LoRA layer's dropout into its ``lora_A``, recomputed in the
    backward pass; returns ``model`` (changed in place).

    The adapter's weights, their names and its saved config do not change, so
    checkpoints and exported adapters are the same files. Left to peft: layers
    without dropout, DoRA adapters (their forward applies the dropout on its
    own) and layers whose ``lora_A`` is not a plain Linear or Conv.
    """
    from peft.tuners.lora import LoraLayer

    for module in model.modules():
        if not isinstance(module, LoraLayer):
            continue
        for name, layer_dropout in list(module.lora_dropout.items()):
            lora_a = module.lora_A[name]
            swap = _SWAPS.get(type(lora_a))
            if swap is None or type(layer_dropout) is not torch.nn.Dropout or layer_dropout.p == 0 \
                    or name in getattr(module, "lora_variant", {}):
                continue
            lora_a.__class__ = swap
            lora_a.dropout_p = layer_dropout.p
            module.lora_dropout[name] = torch.nn.Identity()
    return model
