"""Small helpers tasks share around a torch model."""

from __future__ import annotations

from contextlib import contextmanager
from typing import Any, Iterator


def device_and_dtype(model: Any) -> tuple[Any, Any]:
    """Device and floating dtype of ``model``'s weights, for its inputs."""
    parameter = next(p for p in model.parameters() if p.is_floating_point())
    return parameter.device, parameter.dtype


def inner_model(model: Any) -> Any:
    """The model inside a ``PeftModel`` (its LoRA layers stay in place), or
    ``model`` itself: for calling the model's own methods (generate, its
    library's inference) on the adapted model."""
    return model.get_base_model() if hasattr(model, "get_base_model") else model


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
