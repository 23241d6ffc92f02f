"""Merging adapters into their base: one adapter, or several with weights.

peft adds a delta to ``weight`` in place, which is lost on a layer whose
weight is computed by a parametrization (weight norm): such layers are merged
here through the parametrization instead.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lorakit.errors import AdapterError


def merge(peft_model: Any, adapter_names: list[str] | None = None) -> Any:
    """Fold LoRA deltas (the active adapter, or ``adapter_names``) into the base
    weights and return the plain model.

    peft adds a delta to ``weight`` in place, which is lost on a layer whose
    weight is computed by a parametrization (weight norm): the next access
    recomputes it. Those layers are merged here through the parametrization
    (assigning ``weight`` goes through its ``right_inverse``) and their LoRA
    zeroed, then peft merges the rest.
    """
    import torch
    from peft.tuners.lora import LoraLayer
    from torch.nn.utils import parametrize

    for module in peft_model.modules():
        if not isinstance(module, LoraLayer):
            continue
        layer = module.get_base_layer()
        if not parametrize.is_parametrized(layer, "weight"):
            continue
        for name in adapter_names or module.active_adapters:
            if name not in module.lora_B:
                continue
            if module.use_dora.get(name):
                raise AdapterError("DoRA on a weight-normed layer cannot be merged; export the adapter unmerged")
            with torch.no_grad():
                layer.weight = layer.weight + module.get_delta_weight(name)
                module.lora_B[name].weight.zero_()
    return peft_model.merge_and_unload(adapter_names=adapter_names)


def merge_weighted(base_model: Any, adapters: list[tuple[Path, float]]) -> Any:
    """``base_model`` with several adapters merged in, each delta scaled by its
    weight (the ``<lora:name:0.7>`` habit): sum_i w_i * B_i A_i."""
    from peft import PeftModel
    from peft.tuners.lora import LoraLayer

    from lorakit.artifact import peft_load_errors, read_manifest
    from lorakit.lora import match_conv_geometry

    names = [f"adapter{i}" for i in range(len(adapters))]
    saving = [str(path) for path, _ in adapters if read_manifest(path).modules_to_save]
    if saving and len(adapters) > 1:
        raise AdapterError(f"{', '.join(saving)} train whole modules (modules_to_save), which cannot be mixed "
                           "with other adapters; use such an adapter alone")
    with peft_load_errors(adapters[0][0]):
        model = PeftModel.from_pretrained(base_model, str(adapters[0][0]), adapter_name=names[0])
    for name, (path, _) in zip(names[1:], adapters[1:]):
        with peft_load_errors(path):
            model.load_adapter(str(path), adapter_name=name)
    match_conv_geometry(model)
    weights = dict(zip(names, (weight for _, weight in adapters)))
    for module in model.modules():
        if isinstance(module, LoraLayer):
            for name in names:
                if name in module.scaling:
                    module.scaling[name] *= weights[name]
    return merge(model, names)
