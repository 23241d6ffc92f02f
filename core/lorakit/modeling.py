"""Small helpers tasks share around a torch model."""

from __future__ import annotations

from contextlib import contextmanager
from typing import Any, Iterator


def device_and_dtype(model: Any) -> tuple[Any, Any]:
    """Device and floating dtype of ``model``'s weights, for its inputs."""
    parameter = next(p for p in model.parameters() if p.is_floating_point())
    return parameter.device, parameter.dtype


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
