"""Small helpers tasks share around a torch model: unwrapping, devices, modes, seeds."""

from __future__ import annotations

from contextlib import contextmanager
from typing import Any, Iterator


def unwrap(model: Any) -> Any:
    """The ``PeftModel`` inside whatever wraps it for several processes
    (DistributedDataParallel, accelerate's compiled or autocast wrappers)."""
    while hasattr(model, "module") and not hasattr(model, "get_base_model"):
        model = model.module
    return getattr(model, "_orig_mod", model)


def inner_model(model: Any) -> Any:
    """The model inside a ``PeftModel`` (its LoRA layers stay in place), or
    ``model`` itself: for calling the model's own methods (generate, its
    library's inference) on the adapted model."""
    model = unwrap(model)
    return model.get_base_model() if hasattr(model, "get_base_model") else model


def device_and_dtype(model: Any) -> tuple[Any, Any]:
    """Device and floating dtype of ``model``'s weights, for its inputs."""
    parameter = next(p for p in model.parameters() if p.is_floating_point())
    return parameter.device, parameter.dtype


def to_device(batch: Any, model: Any) -> Any:
    """``batch`` (a tensor, or a dict / list / tuple of them) on ``model``'s
    device; floating tensors also take the weights' dtype."""
    import torch

    device, dtype = device_and_dtype(model)

    def move(value: Any) -> Any:
        if isinstance(value, torch.Tensor):
            return value.to(device, dtype) if value.is_floating_point() else value.to(device)
        if isinstance(value, dict):
            return {key: move(item) for key, item in value.items()}
        if isinstance(value, (list, tuple)):
            return type(value)(move(item) for item in value)
        return value

    return move(batch)


@contextmanager
def eval_mode(model: Any) -> Iterator[None]:
    """Eval mode for a block, then the mode it had, so that evaluating in the
    middle of training leaves dropout as it was."""
    was_training = model.training
    model.eval()
    try:
        yield
    finally:
        model.train(was_training)


@contextmanager
def adapter_disabled(model: Any) -> Iterator[None]:
    """The base alone for a block: LoRA layers and trained-fully modules off,
    then each back as it was. Unlike peft's ``disable_adapter()`` it nests
    (an inner block does not switch the adapter back on at its end), and on
    a model without an adapter it does nothing."""
    from peft.tuners.tuners_utils import BaseTunerLayer
    from peft.utils.other import AuxiliaryTrainingWrapper

    layers = [m for m in unwrap(model).modules() if isinstance(m, (BaseTunerLayer, AuxiliaryTrainingWrapper))]
    states = [_disabled(layer) for layer in layers]
    for layer in layers:
        layer.enable_adapters(False)
    try:
        yield
    finally:
        for layer, disabled in zip(layers, states):
            layer.enable_adapters(not disabled)


def _disabled(layer: Any) -> bool:
    return bool(getattr(layer, "disable_adapters", getattr(layer, "_disable_adapters", False)))


@contextmanager
def seeded(seed: int, device: Any = None) -> Iterator[None]:
    """Draw from torch's generators seeded with ``seed`` for a block, and
    leave them as they were after it: the CPU generator and, for a CUDA
    ``device``, that device's generator too."""
    import torch

    devices = [device] if device is not None and torch.device(device).type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        if devices:
            torch.cuda.manual_seed(seed)
        yield
