"""Merging adapters into their base: one adapter, or several with weights;
and several held unmerged in one model, switched among by weights.

peft adds a delta to ``weight`` in place, which is lost on a layer whose
weight is computed by a parametrization (weight norm): such layers are merged
here through the parametrization instead.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any, Callable, Iterator

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
    from lorakit.artifact import read_manifest

    refuse_whole_modules_in_mix([str(path) for path, _ in adapters if read_manifest(path).modules_to_save],
                                len(adapters))
    model, names = load_several(base_model, [path for path, _ in adapters])
    scale(model, dict(zip(names, (weight for _, weight in adapters))))
    return merge(model, names)


def refuse_whole_modules_in_mix(saving: list[str], count: int) -> None:
    """A module trained whole replaces the base's, so two adapters cannot both
    have theirs: refuse ``saving`` (adapters with modules_to_save) among ``count``."""
    if saving and count > 1:
        verb = "trains" if len(saving) == 1 else "train"
        raise AdapterError(f"{', '.join(saving)} {verb} whole modules (modules_to_save), which cannot be mixed "
                           "with other adapters; use such an adapter alone")


def load_several(base_model: Any, paths: list[Path]) -> tuple[Any, list[str]]:
    """``base_model`` in one PeftModel holding every adapter of ``paths``
    unmerged, and their peft names (``adapter0``, ...: peft names may not hold
    "." or "/"), for ``weighted`` or a merge."""
    from peft import PeftModel

    from lorakit.artifact import peft_load_errors
    from lorakit.lora import match_conv_geometry

    names = [f"adapter{i}" for i in range(len(paths))]
    with peft_load_errors(paths[0]):
        model = PeftModel.from_pretrained(base_model, str(paths[0]), adapter_name=names[0], is_trainable=False)
    for name, path in zip(names[1:], paths[1:]):
        with peft_load_errors(path):
            model.load_adapter(str(path), adapter_name=name, is_trainable=False)
    return match_conv_geometry(model), names


@contextlib.contextmanager
def weighted(model: Any, weights: dict[str, float]) -> Iterator[Any]:
    """``model`` (from ``load_several``) with exactly the adapters named in
    ``weights`` active, each delta scaled by its weight: W x + sum_i w_i B_i A_i x,
    the model ``merge_weighted`` makes, left unmerged so that switching costs
    nothing. No weights: the base alone. The active set and the scalings are
    put back afterwards."""
    from lorakit.modeling import adapter_disabled

    if not weights:
        with adapter_disabled(model):
            yield model
        return
    put_back = set_weights(model, weights)
    try:
        yield model
    finally:
        put_back()


def set_weights(model: Any, weights: dict[str, float]) -> Callable[[], None]:
    """Make exactly the adapters named in ``weights`` active, each scaled by
    its weight (as ``weighted`` does, until undone); returns the function
    that puts back the active set and scalings that were there."""
    tuner = model.base_model
    active = list(tuner.active_adapters)
    tuner.set_adapter(list(weights), inference_mode=True)
    saved = scale(model, weights)

    def put_back() -> None:
        for module, name, scaling in saved:
            module.scaling[name] = scaling
        tuner.set_adapter(active, inference_mode=True)

    return put_back


def scale(model: Any, weights: dict[str, float]) -> list[tuple[Any, str, float]]:
    """Multiply each named adapter's LoRA scaling by its weight; returns what
    was there, to put back."""
    from peft.tuners.lora import LoraLayer

    saved = []
    for module in model.modules():
        if isinstance(module, LoraLayer):
            for name, weight in weights.items():
                if name in module.scaling:
                    saved.append((module, name, module.scaling[name]))
                    module.scaling[name] *= weight
    return saved
