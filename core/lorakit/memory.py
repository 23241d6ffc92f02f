"""What trades compute or precision for memory: the frozen base held in bf16 /
fp16 or 4-bit (QLoRA), gradient checkpointing (and, in ``lora_dropout`` and ``lora_inputs``,
LoRA dropout and the norm and activation outputs LoRA reads recomputed in the
backward pass).

The base is fingerprinted in full precision before any of this, and the
adapter is always evaluated and exported on a freshly loaded full-precision
base: a reduced base is a training-time saving only, and the LoRA weights
and their optimizer states stay fp32 whatever the base is held in.
"""

from __future__ import annotations

from typing import Any, Sequence

from lorakit.errors import ConfigError

HALF = {"bf16": "bfloat16", "fp16": "float16"}


def autocast_for(base_dtype: str, precision: str, cuda: bool) -> str:
    """The mixed precision a run needs for its base dtype: a half-precision
    base computes in autocast of its own dtype (fp32 inputs meet bf16 weights
    only inside autocast); ``precision`` is the user's setting."""
    # bitsandbytes' 4-bit CPU path fails on some layer shapes when evaluating.
    if base_dtype in ("fp16", "4bit") and not cuda:
        raise ConfigError(f"base_dtype = {base_dtype!r} needs a CUDA GPU; on a CPU use base_dtype bf16 or fp32")
    if base_dtype == "fp32":
        return precision
    if base_dtype == "4bit":
        return precision if precision != "no" else _refuse(base_dtype, precision, "bf16 or fp16")
    wanted = base_dtype
    if precision in ("auto", wanted):
        return wanted
    return _refuse(base_dtype, precision, wanted)


def _refuse(base_dtype: str, precision: str, fits: str) -> str:
    raise ConfigError(f"base_dtype = {base_dtype!r} computes in reduced precision, but train.precision = "
                      f"{precision!r}; use --train.precision auto (or {fits}), or --base_dtype fp32")


def hold_base(model: Any, base_dtype: str, keep: Sequence[str] = (), device: Any = None) -> Any:
    """The frozen base in ``base_dtype``: floating weights cast to bf16 / fp16,
    or every Linear layer but ``keep`` (modules trained fully) quantized to
    4-bit NF4 on ``device`` (default: the GPU). Returns the model (changed in place)."""
    import torch

    if base_dtype == "fp32":
        return model
    if base_dtype in HALF:
        return model.to(getattr(torch, HALF[base_dtype]))
    return _quantize_4bit(model, keep, device)


def _quantize_4bit(model: Any, keep: Sequence[str], device: Any = None) -> Any:
    import importlib.util

    if importlib.util.find_spec("bitsandbytes") is None:
        raise ConfigError("base_dtype = '4bit' needs bitsandbytes, which is not installed: pip install bitsandbytes")
    import bitsandbytes as bnb
    import torch
    from peft import prepare_model_for_kbit_training

    from lorakit.device import inference_device, native_bf16

    device = inference_device() if device is None else torch.device(device)
    compute = torch.float16 if device.type == "cuda" and not native_bf16() else torch.bfloat16
    kept = tuple(keep)
    for name, module in list(model.named_modules()):
        for child_name, child in list(module.named_children()):
            full = f"{name}.{child_name}" if name else child_name
            if type(child) is not torch.nn.Linear or any(full == k or full.endswith("." + k) for k in kept):
                continue
            quantized = bnb.nn.Linear4bit(child.in_features, child.out_features, bias=child.bias is not None,
                                          compute_dtype=compute, quant_type="nf4", device="meta")
            quantized.weight = bnb.nn.Params4bit(child.weight.data.to("cpu"), requires_grad=False, quant_type="nf4")
            if child.bias is not None:
                quantized.bias = torch.nn.Parameter(child.bias.data.to(compute), requires_grad=False)
            setattr(module, child_name, quantized)
    model = model.to(compute).to(device)  # moving a Params4bit to a device is what quantizes it
    # peft's k-bit preparation: norms and the other small layers back to fp32, inputs carry gradients.
    return prepare_model_for_kbit_training(model, use_gradient_checkpointing=False)


def trainable_to_fp32(model: Any) -> None:
    """LoRA weights and fully trained modules in fp32, whatever the base holds:
    AdamW's small updates vanish in bf16."""
    import torch

    for p in model.parameters():
        if p.requires_grad and p.dtype != torch.float32:
            p.data = p.data.float()


def enable_gradient_checkpointing(model: Any, task_name: str) -> None:
    """Recompute activations in the backward pass (Hugging Face models, or any
    model with a ``gradient_checkpointing_enable`` method); ``model`` is the
    base after LoRA went in (peft's own preparation, done when LoRA goes into
    a checkpointing model, would undo the last step here)."""
    enable = getattr(model, "activation_checkpointing_enable", None) or getattr(model, "gradient_checkpointing_enable", None)
    if enable is None or getattr(model, "supports_gradient_checkpointing", True) is False:
        raise ConfigError(f"the {task_name!r} task's model ({type(model).__name__}) has no gradient checkpointing; "
                          "drop --train.gradient_checkpointing, or lower --train.batch_size and raise "
                          "--train.grad_accum to save memory")
    # Non-reentrant checkpointing passes gradients to LoRA inside a
    # checkpointed block without the inputs requiring grad.
    enable({"use_reentrant": False})
    # Transformers also makes the embeddings' output require grad (needed by
    # reentrant checkpointing only); that breaks models which add to it in
    # place (BLIP's text embeddings).
    disable = getattr(model, "disable_input_require_grads", None)
    if disable is not None:
        disable()
