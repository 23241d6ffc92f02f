"""LoRA keeps no copy of a norm's or an activation's output for the backward pass.

``lora_A``'s weight gradient needs its input, so autograd keeps it until the
backward pass. In a transformer that input is mostly a LayerNorm's output
(the attention projections and the first MLP layer) or the MLP's activation
(the second MLP layer): tensors nothing else keeps, since a frozen Linear
needs only its weight for the gradient of its input. The norm and the
activation keep their own input anyway, for their own backward pass, so
``lora_A`` can keep that instead and recompute the output, bit for bit,
when the backward pass asks for it. On MusicGen's decoder that is the
4096-wide GELU output and three LayerNorm outputs per layer; on BLIP's vision
tower the 3072-wide GELU output and two.

Only outputs of deterministic modules without state are recomputed: torch's
LayerNorm and RMSNorm, and GELU and SiLU from torch or transformers, whose
input requires a gradient (so their own backward keeps it, and catches its
change in place). The gradients themselves flow as before, into the norm's
or activation's own graph node: losses and gradients are bit-equal to peft's
path. Left alone: LoRA on Conv layers, peft's own dropout (its ``lora_A``
reads a dropped copy), outputs changed in place before the LoRA layer read
them, and regions already under saved-tensor hooks (gradient checkpointing,
offloading), which decide what is kept there themselves.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any

import torch

from lorakit.lora_dropout import DropoutInsideLinear

#: Where a producer's output carries how to recompute it.
_RECIPE = "_lorakit_recipe"


@dataclass
class _Recipe:
    """How to make a module's output again: the module, its input (kept by
    the module's own backward anyway) and the autocast it ran under."""

    module: torch.nn.Module
    source: torch.Tensor
    source_version: int
    output_version: int
    output_layout: tuple[torch.Size, tuple[int, ...], torch.dtype]
    autocast: list[tuple[str, bool, torch.dtype]]

    def output(self) -> torch.Tensor:
        if self.source._version != self.source_version:
            raise RuntimeError(
                f"the input of {type(self.module).__name__} was changed in place after it ran, so its output "
                "cannot be recomputed for a LoRA layer's gradient; train with --train.recompute_inputs false")
        with contextlib.ExitStack() as stack:
            stack.enter_context(torch.no_grad())
            for device_type, enabled, dtype in self.autocast:
                stack.enter_context(torch.autocast(device_type, dtype=dtype, enabled=enabled))
            output = self.module(self.source)
        if _layout(output) != self.output_layout:
            raise RuntimeError(f"{type(self.module).__name__} recomputed an output of another shape or type "
                               f"({_layout(output)} != {self.output_layout}); train with "
                               "--train.recompute_inputs false")
        return output


@dataclass
class _Kept:
    """What a LoRA layer keeps instead of (a view of) its input."""

    recipe: _Recipe
    dtype: torch.dtype
    size: torch.Size
    stride: tuple[int, ...]
    offset: int

    def rebuild(self) -> torch.Tensor:
        return self.recipe.output().to(self.dtype).as_strided(self.size, self.stride, self.offset)


def _layout(tensor: torch.Tensor) -> tuple[torch.Size, tuple[int, ...], torch.dtype]:
    return tensor.size(), tensor.stride(), tensor.dtype


def _autocast_state(device_type: str) -> list[tuple[str, bool, torch.dtype]]:
    types = dict.fromkeys([device_type, "cpu"])
    return [(t, torch.is_autocast_enabled(t), torch.get_autocast_dtype(t)) for t in types]


def _tag_output(module: torch.nn.Module, args: tuple, kwargs: dict, output: Any) -> None:
    """Forward hook of a producer: record how to make its output again."""
    if kwargs or len(args) != 1 or not torch.is_grad_enabled():
        return
    source = args[0]
    if not (isinstance(source, torch.Tensor) and isinstance(output, torch.Tensor) and source.requires_grad
            and output.is_contiguous() and output.storage_offset() == 0):
        return
    setattr(output, _RECIPE, _Recipe(module, source, source._version, output._version, _layout(output),
                                     _autocast_state(source.device.type)))


#: transformers' activations (``ACT2FN`` names) whose backward keeps their input.
_TRANSFORMERS_ACTIVATIONS = ("gelu", "gelu_fast", "gelu_new", "gelu_python", "gelu_pytorch_tanh", "gelu_accurate",
                             "quick_gelu", "silu", "swish")


def _producer_kinds() -> set[type]:
    """The norms and activations whose output is a function of their input
    alone, and whose own backward keeps that input. ReLU, Tanh and Sigmoid
    keep their output instead: a LoRA layer reading it keeps nothing more."""
    from transformers.activations import ACT2CLS

    kinds = {torch.nn.LayerNorm, torch.nn.RMSNorm, torch.nn.GELU, torch.nn.SiLU}
    for name in _TRANSFORMERS_ACTIVATIONS:
        kind = ACT2CLS.get(name)
        if kind is not None:
            kinds.add(kind[0] if isinstance(kind, tuple) else kind)
    return kinds


def _producer(module: torch.nn.Module, kinds: set[type]) -> bool:
    if type(module) not in kinds:
        return False
    # A norm's affine weights are parameters; an activation with any is not a plain function.
    return isinstance(module, (torch.nn.LayerNorm, torch.nn.RMSNorm)) or next(module.parameters(), None) is None


def outer_hooks_active() -> bool:
    """Whether saved-tensor hooks (gradient checkpointing, offloading) decide
    what the code running now keeps for the backward pass."""
    top = getattr(torch._C._autograd, "_top_saved_tensors_default_hooks", None)
    return top is None or top(False) is not None


class _InputRecomputed:
    """Mixed into a ``lora_A`` layer's class: when its LoRA layer's input is
    a producer's output (``_input_recipe``, set for the duration of the LoRA
    layer's forward), keeps the producer's recipe in place of that input."""

    _input_recipe: _Recipe | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        recipe = self._input_recipe
        if (recipe is None or not self.training or not torch.is_grad_enabled() or x.numel() == 0
                or x.size() != recipe.output_layout[0] or outer_hooks_active()):
            return super().forward(x)
        if not getattr(self, "dropout_p", 0):
            # Under autocast the matmul would keep its own low-precision copy of x: cast
            # it here, as autocast would (it passes a tensor of its dtype through), so
            # that the copy kept is this one, recomputed as the producer's output cast.
            x = _as_autocast_would(x)
        # The hooks stay with every tensor they pack: they must not hold x.
        device, storage = x.device, x.untyped_storage().data_ptr()

        def pack(tensor: torch.Tensor) -> Any:
            if tensor.device != device or tensor.untyped_storage().data_ptr() != storage:
                return tensor
            return _Kept(recipe, tensor.dtype, tensor.size(), tensor.stride(), tensor.storage_offset())

        def unpack(kept: Any) -> torch.Tensor:
            return kept.rebuild() if isinstance(kept, _Kept) else kept

        with torch.autograd.graph.saved_tensors_hooks(pack, unpack):
            return super().forward(x)


def _hand_recipe(layer: Any, args: tuple, kwargs: dict) -> None:
    """Forward pre-hook of a LoRA layer: peft gives each ``lora_A`` the
    layer's input (cast to the adapter's dtype, a copy the producer's tag
    does not follow), unless it splits the batch by adapter or the adapter
    is off, merged, or drops out in peft's own module."""
    x = args[0] if args else None
    recipe = getattr(x, _RECIPE, None)
    if (recipe is None or x._version != recipe.output_version or kwargs.get("adapter_names") is not None
            or layer.disable_adapters or layer.merged):
        return
    for name, lora_a in layer.lora_A.items():
        if isinstance(lora_a, _InputRecomputed) and type(layer.lora_dropout[name]) is torch.nn.Identity:
            lora_a._input_recipe = recipe


def _take_recipe_back(layer: Any, args: tuple, kwargs: dict, output: Any) -> None:
    for lora_a in layer.lora_A.values():
        lora_a.__dict__.pop("_input_recipe", None)


def _as_autocast_would(x: torch.Tensor) -> torch.Tensor:
    device_type = x.device.type
    if not torch.is_autocast_enabled(device_type) or not x.is_floating_point():
        return x
    return x.to(torch.get_autocast_dtype(device_type))


class InputRecomputedLinear(_InputRecomputed, torch.nn.Linear):
    pass


class InputRecomputedDropoutInsideLinear(_InputRecomputed, DropoutInsideLinear):
    pass


_SWAPS = {torch.nn.Linear: InputRecomputedLinear, DropoutInsideLinear: InputRecomputedDropoutInsideLinear}


def recompute_lora_inputs(model: Any) -> Any:
    """Let each Linear ``lora_A`` keep a norm's or activation's input instead
    of its output; returns ``model`` (changed in place). Call after
    ``recompute_lora_dropout``. Weights, names and the saved config do not
    change, so checkpoints and exported adapters are the same files."""
    from peft.tuners.lora import LoraLayer

    swapped = False
    for module in model.modules():
        if not isinstance(module, LoraLayer):
            continue
        swaps = {name: _SWAPS.get(type(lora_a)) for name, lora_a in module.lora_A.items()
                 if name not in getattr(module, "lora_variant", {})}
        for name, swap in swaps.items():
            if swap is not None:
                module.lora_A[name].__class__ = swap
        if any(swaps.values()) and _mark(module):
            module.register_forward_pre_hook(_hand_recipe, with_kwargs=True)
            module.register_forward_hook(_take_recipe_back, with_kwargs=True, always_call=True)
            swapped = True
    if swapped:
        kinds = _producer_kinds()
        for module in model.modules():
            if _producer(module, kinds) and _mark(module):
                module.register_forward_hook(_tag_output, with_kwargs=True)
    return model


def _mark(module: torch.nn.Module) -> bool:
    """Mark ``module`` as hooked; False if it already was (a second call adds no hooks)."""
    if getattr(module, "_lorakit_recomputes_inputs", False):
        return False
    module._lorakit_recomputes_inputs = True
    return True
