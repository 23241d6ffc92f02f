"""Base vs adapter on the same held-out examples: the run's report and its samples."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lorakit.capabilities import WritesSamples
from lorakit.modeling import adapter_disabled
from lorakit.run_data import Splits
from lorakit.task import Base, Task


def evaluate_pair(task: Task, base: Base, model: Any, splits: Splits) -> dict[str, Any]:
    """Metrics of the base (adapter disabled) and the adapter on the same
    held-out sets: ``{split: {"examples": n, "base": {...}, "adapter": {...}}}``."""
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
            adapter_scores = task.evaluate(base, model, examples)
        report[split] = {"examples": len(examples), "base": _floats(base_scores), "adapter": _floats(adapter_scores)}
        if split == "retain" and splits.replay_pool:
            total = len(examples) + len(splits.replay_pool)
            report[split]["note"] = (f"retain scores {len(examples)} of the {total} retain examples; the other "
                                     f"{len(splits.replay_pool)} were replayed in training (--replay)")
        if split == "test":
            verdict = task.judge(report[split]["base"], report[split]["adapter"])
            if verdict:
                report[split]["verdict"] = list(verdict)
    return report


def write_samples(task: Task, base: Base, model: Any, examples: list[Any], folder: Path) -> None:
    """The task's outputs to look at or listen to, for base and adapter side by side."""
    import torch

    if not examples or not isinstance(task, WritesSamples):
        return
    with torch.inference_mode():
        with adapter_disabled(model):
            task.write_samples(base, model, examples, folder / "base")
        task.write_samples(base, model, examples, folder / "adapter")


def _floats(scores: dict[str, Any]) -> dict[str, float]:
    return {k: float(v) for k, v in scores.items()}
