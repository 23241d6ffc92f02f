"""Injecting LoRA into a base model with peft, from LoraSettings and the task's defaults."""

from __future__ import annotations

from typing import Any, Sequence

from lorakit.config import LoraSettings
from lorakit.errors import ConfigError, did_you_mean


def lora_config(settings: LoraSettings, targets: Sequence[str] | str, modules_to_save: Sequence[str]) -> Any:
    """A peft ``LoraConfig``; a string target is a regex on full module names."""
    from peft import LoraConfig

    return LoraConfig(
        r=settings.r,
        lora_alpha=settings.alpha,
        lora_dropout=settings.dropout,
        target_modules=targets if isinstance(targets, str) else list(targets),
        use_rslora=settings.rslora,
        use_dora=settings.dora,
        modules_to_save=list(modules_to_save) or None,
    )


def inject(model: Any, settings: LoraSettings, targets: Sequence[str] | str, modules_to_save: Sequence[str]) -> Any:
    """Wrap ``model`` in a ``PeftModel`` with fresh LoRA layers on ``targets``."""
    from peft import get_peft_model

    check_modules_to_save(model, modules_to_save)
    config = lora_config(settings, targets, modules_to_save)
    try:
        return match_conv_geometry(get_peft_model(model, config))
    except ValueError as exc:
        # peft says "Target modules ... not found in the base model".
        reason = str(exc).strip().rstrip(".")
        raise ConfigError(
            f"LoRA targets {targets!r} do not fit this base: {reason}. Its layers LoRA can adapt end in: "
            f"{', '.join(adaptable_suffixes(model)) or 'none'}. Name such suffixes (a list) or one regex matching "
            "whole module names with --lora.targets"
        ) from None


def check_modules_to_save(model: Any, modules_to_save: Sequence[str]) -> None:
    """Refuse a module to train fully that the base lacks: peft skips a name
    it does not find, so a misspelt head would stay untrained and unsaved."""
    names = [name for name, _ in model.named_modules(remove_duplicate=False)]  # tied modules by each name, as peft
    missing = [wanted for wanted in modules_to_save if not any(name.endswith(wanted) for name in names)]  # peft's rule
    if missing:
        parts = sorted({part for name in names for part in name.split(".") if not part.isdigit()})
        guess = did_you_mean(missing[0], parts)
        raise ConfigError(f"modules_to_save {', '.join(map(repr, missing))}{guess}: no module of this base ends in "
                          f"that name, so it would not train; name modules of the base (--lora.modules_to_save, or "
                          "the task's modules_to_save)")


def adaptable_suffixes(model: Any, limit: int = 20) -> list[str]:
    """The last name parts of the layers peft can put LoRA on (Linear, Conv1d,
    Conv2d, Embedding), most common first: what ``--lora.targets`` may name."""
    from collections import Counter

    import torch

    kinds = (torch.nn.Linear, torch.nn.Conv1d, torch.nn.Conv2d, torch.nn.Embedding)
    counts = Counter(name.rsplit(".", 1)[-1] for name, module in model.named_modules()
                     if name and isinstance(module, kinds) and not name.rsplit(".", 1)[-1].isdigit())
    return [suffix for suffix, _ in counts.most_common(limit)]


def targeted_modules(model: Any, targets: Sequence[str] | str) -> list[tuple[str, Any]]:
    """The modules ``targets`` select, by peft's rule: a string is a regex that
    must match the whole module name (``re.fullmatch``); a list names module
    name suffixes (``"query"`` matches ``...attention.query``)."""
    import re

    if isinstance(targets, str):
        return [(n, m) for n, m in model.named_modules() if re.fullmatch(targets, n)]
    wanted = list(targets)
    return [(n, m) for n, m in model.named_modules() if any(n == t or n.endswith("." + t) for t in wanted)]


def match_conv_geometry(model: Any) -> Any:
    """Give each LoRA convolution's ``lora_A`` its base layer's dilation and
    padding mode, and return ``model``.

    peft 0.21 builds ``lora_A`` with the base layer's kernel, stride and padding
    only (huggingface/peft#3697): on a dilated convolution the two branches
    then differ in length and the forward pass fails. Neither attribute changes
    the weight's shape, so saved adapters and merging are unaffected. Called
    wherever an adapter is created or loaded; a no-op once peft copies them.
    """
    from peft.tuners.lora import LoraLayer

    for module in model.modules():
        base = getattr(module, "base_layer", None)
        if not isinstance(module, LoraLayer) or not hasattr(base, "dilation"):
            continue
        for lora_a in module.lora_A.values():
            lora_a.dilation = base.dilation
            lora_a.padding_mode = base.padding_mode
    return model


def has_dilated_lora(model: Any) -> bool:
    """Whether LoRA sits on a dilated convolution (one that peft alone rebuilds wrongly)."""
    from peft.tuners.lora import LoraLayer

    return any(isinstance(module, LoraLayer)
               and any(d != 1 for d in getattr(getattr(module, "base_layer", None), "dilation", (1,)))
               for module in model.modules())


def check_targets(model: Any, targets: Sequence[str] | str) -> None:
    """Refuse targets peft accepts but gets wrong: a grouped Conv1d (its LoRA
    ignores groups) and transposed convolutions (refused by peft with a
    message that names no fix). Dilated convolutions are fine: their geometry
    is copied by ``match_conv_geometry``."""
    import torch

    bad = []
    for name, module in targeted_modules(model, targets):
        if isinstance(module, (torch.nn.ConvTranspose1d, torch.nn.ConvTranspose2d)):
            bad.append(f"{name} (transposed convolution)")
        elif isinstance(module, torch.nn.Conv1d) and module.groups != 1:
            bad.append(f"{name} (Conv1d with groups {module.groups})")
    if bad:
        shown = ", ".join(bad[:4]) + (f" and {len(bad) - 4} more" if len(bad) > 4 else "")
        raise ConfigError(f"--lora.targets {targets!r} selects layers LoRA cannot adapt: {shown}. "
                          "Leave them out of --lora.targets (a list of name suffixes, or one regex that must "
                          "match whole module names)")


def count_parameters(model: Any) -> tuple[int, int]:
    """(trainable, total) parameter counts."""
    trainable = total = 0
    for p in model.parameters():
        total += p.numel()
        if p.requires_grad:
            trainable += p.numel()
    return trainable, total


def lora_layers_by_part(model: Any) -> dict[str, int]:
    """How many layers carry LoRA, by the model's top-level part
    (``{"waveform_decoder": 19}``): what a run prints, so that a target regex
    that misses a part's layers shows."""
    from collections import Counter

    from peft.tuners.lora import LoraLayer

    from lorakit.modeling import inner_model

    return dict(Counter(name.split(".")[0] for name, module in inner_model(model).named_modules()
                        if isinstance(module, LoraLayer)))


def trainable_state(model: Any) -> dict[str, Any]:
    """The tensors that training changes (LoRA weights, modules_to_save), detached on CPU."""
    return {name: p.detach().to("cpu").contiguous().clone() for name, p in model.named_parameters() if p.requires_grad}


def load_trainable_state(model: Any, state: dict[str, Any]) -> None:
    """Copy tensors saved by ``trainable_state`` back into ``model``'s parameters."""
    import torch

    params = dict(model.named_parameters())
    missing = [name for name in state if name not in params]
    if missing:
        raise ConfigError(f"checkpoint does not fit this model: unknown parameters {missing[:3]}")
    with torch.no_grad():
        for name, tensor in state.items():
            params[name].copy_(tensor.to(params[name].device, params[name].dtype))
