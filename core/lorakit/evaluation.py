"""Base vs adapter on the same held-out examples: the run's report and its samples."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from lorakit.capabilities import WritesSamples
from lorakit.modeling import adapter_disabled
from lorakit.run_data import Splits
from lorakit.task import Base, Task


def _nothing(n: int = 1) -> None:
    """No progress to show."""


def evaluation_parts(task: Task, splits: Splits, samples: bool = False) -> int:
    """How many passes ``evaluate_pair`` (and ``write_samples``) make: base
    and adapter on each held-out set, and on the samples: a progress total."""
    sets = sum(1 for examples in (splits.test, splits.retain_test) if examples)
    return 2 * sets + (2 if samples and splits.test and isinstance(task, WritesSamples) else 0)


def evaluate_pair(task: Task, base: Base, model: Any, splits: Splits,
                  advance: Callable[[int], None] = _nothing) -> dict[str, Any]:
    """Metrics of the base (adapter disabled) and the adapter on the same
    held-out sets: ``{split: {"examples": n, "base": {...}, "adapter": {...}}}``;
    ``advance`` is called after each of the passes."""
    import torch

    report: dict[str, Any] = {}
    sets = {"test": splits.test, "retain": splits.retain_test}
    model.eval()
    for split, examples in sets.items():
        if not examples:
            continue
        with torch.inference_mode():
            with adapter_disabled(model):
                base_scores = task.evaluate(base, model, examples)
            advance(1)
            adapter_scores = task.evaluate(base, model, examples)
            advance(1)
        report[split] = {"examples": len(examples), "base": scores_of(task, base_scores),
                         "adapter": scores_of(task, adapter_scores)}
        if split == "retain" and splits.replay_pool:
            total = len(examples) + len(splits.replay_pool)
            report[split]["note"] = (f"retain scores {len(examples)} of the {total} retain examples; the other "
                                     f"{len(splits.replay_pool)} were replayed in training (--replay)")
        if split == "test":
            verdict = task.judge(report[split]["base"], report[split]["adapter"])
            if verdict:
                report[split]["verdict"] = list(verdict)
    return report


def write_samples(task: Task, base: Base, model: Any, examples: list[Any], folder: Path,
                  advance: Callable[[int], None] = _nothing) -> None:
    """The task's outputs to look at or listen to, for base and adapter side by side."""
    import torch

    if not examples or not isinstance(task, WritesSamples):
        return
    with torch.inference_mode():
        with adapter_disabled(model):
            task.write_samples(base, model, examples, folder / "base")
        advance(1)
        task.write_samples(base, model, examples, folder / "adapter")
        advance(1)


def scores_of(task: Task, scores: Any) -> dict[str, float]:
    """What ``task.evaluate`` returned, as floats, refused unless it holds
    every metric the task declares: a renamed one was reported under its own
    name with no direction, and the headline the report judges by was missing."""
    from lorakit.errors import PluginError

    if not isinstance(scores, dict):
        raise PluginError(f"task {task.name!r}: evaluate must return a dict of metric -> number; got "
                          f"{type(scores).__name__}")
    missing = [name for name in task.metrics if name not in scores]
    if missing:
        raise PluginError(f"task {task.name!r}: evaluate returned {', '.join(scores) or 'nothing'}, without "
                          f"{', '.join(missing)} that its metrics declare; return every declared metric")
    numbers = {}
    for name, value in scores.items():
        try:
            numbers[name] = float(value)
        except (TypeError, ValueError):
            raise PluginError(f"task {task.name!r}: evaluate's {name} must be a number; got {value!r}") from None
    return numbers
