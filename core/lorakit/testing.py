"""A conformance kit for plugin authors: call it from your own tests.

    from lorakit.testing import check_task

    def test_my_task_meets_the_contract(tmp_path):
        check_task(MyTask, data="tests/data", base="demo", workdir=tmp_path)

It checks that the task implements the contract, then runs a tiny round trip
through the real core: train a few steps, evaluate base vs adapter, export the
adapter, load it with stock peft (same outputs), resume (same weights as an
uninterrupted run) and merge (same outputs). A failure raises AssertionError
with what to fix.
"""

from __future__ import annotations

import dataclasses
import inspect
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from lorakit.task import Task, TaskOptions

REQUIRED = ("load_base", "load_data", "collate", "evaluate", "predict", "probe")


@dataclass
class ConformanceReport:
    """What ``check_task`` measured, for a plugin's own assertions."""

    task: str
    metrics: dict[str, Any] = field(default_factory=dict)
    merge_difference: float = 0.0
    checks: list[str] = field(default_factory=list)


def check_contract(task_class: type[Task]) -> list[str]:
    """Static checks of a Task subclass; returns the names of the checks passed."""
    from lorakit.errors import PluginError
    from lorakit.plugins import check_task_class

    assert inspect.isclass(task_class) and issubclass(task_class, Task), f"{task_class!r} is not a lorakit.Task subclass"
    try:
        check_task_class(task_class, "the plugin under test")
    except PluginError as exc:
        raise AssertionError(str(exc)) from None
    missing = [name for name in REQUIRED if getattr(task_class, name) is getattr(Task, name)]
    assert not missing, f"task {task_class.name!r} must implement {', '.join(missing)}"
    trains = task_class.loss is not Task.loss or task_class.training_step is not Task.training_step
    assert trains, f"task {task_class.name!r} must implement loss (or training_step for several optimizers)"
    assert task_class.metrics, f"task {task_class.name!r} must declare metrics, e.g. {{'accuracy': 'max'}}"
    bad = {k: v for k, v in task_class.metrics.items() if v not in ("max", "min")}
    assert not bad, f"task {task_class.name!r}: metric directions must be 'max' or 'min', got {bad}"
    options = task_class.options_class
    assert dataclasses.is_dataclass(options) and issubclass(options, TaskOptions), \
        f"task {task_class.name!r}: options_class must be a dataclass subclassing lorakit.TaskOptions"
    options()  # every option has a default
    assert task_class.description, f"task {task_class.name!r} needs a one-line description for `lorakit tasks`"
    return ["contract"]


def check_task(task_class: type[Task], data: str | Path, workdir: str | Path, base: str = "demo",
               flags: Sequence[str] = (), steps: int = 4) -> ConformanceReport:
    """The contract, then a train/evaluate/export/reload/resume/merge round trip.

    ``data`` is a small data folder of the task (a dozen examples is enough),
    ``workdir`` an empty scratch folder (pytest's ``tmp_path``), ``flags``
    extra run flags (e.g. task options).
    """
    import torch

    from lorakit import runs
    from lorakit.plugins import get_host

    report = ConformanceReport(task_class.name, checks=check_contract(task_class))
    get_host().add_task(task_class, plugin="lorakit.testing")
    workdir = Path(workdir)
    common = ["--data", str(data), "--base", base, "--train.max_steps", str(steps), "--batch_size", "2",
              "--lora.dropout", "0.1", "--val_fraction", "0.2", "--test_fraction", "0.2", *flags]

    def config(name: str):
        return runs.load_config(task_class.name, [*common, "--output", str(workdir / name)])

    whole = runs.run(config("whole"), show_progress=False)
    _check_report(task_class, whole.report)
    report.metrics = whole.report
    report.checks.append("train-evaluate-export")

    _check_stock_peft(task_class, base, whole.adapter_dir, whole.run_dir)
    report.checks.append("stock-peft-reload")

    half = max(1, steps // 2)
    runs.run(config("resumed"), stop_after=half, show_progress=False)
    resumed = runs.run(config("resumed"), resume=True, show_progress=False)
    a, b = _adapter_weights(whole.adapter_dir), _adapter_weights(resumed.adapter_dir)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a), (
        f"task {task_class.name!r}: training resumed after {half} steps ended with other weights than an "
        "uninterrupted run; keep collate/loss free of hidden state and draw randomness from torch/numpy/random")
    report.checks.append("exact-resume")

    report.merge_difference = runs.export_merged(whole.run_dir, workdir / "merged")
    report.checks.append("merged-export")
    return report


def _check_report(task_class: type[Task], report: dict[str, Any]) -> None:
    assert "test" in report, "the run produced no held-out evaluation; the data folder is too small?"
    for side in ("base", "adapter"):
        missing = set(task_class.metrics) - set(report["test"][side])
        assert not missing, f"task {task_class.name!r}: evaluate() did not return {sorted(missing)}"


def _check_stock_peft(task_class: type[Task], base: str, adapter_dir: Path, run_dir: Path) -> None:
    import torch
    from peft import PeftModel

    from lorakit import runs

    task, loaded_base, model, _, _ = runs.open_adapter(run_dir)
    plain_base = task_class(task.options).load_base(base)
    plain = PeftModel.from_pretrained(plain_base.model, str(adapter_dir))
    plain.eval()
    with torch.inference_mode():
        ours, theirs = task.probe(loaded_base, model), task.probe(plain_base, plain)
    assert torch.allclose(ours.float(), theirs.float(), atol=1e-6), (
        f"task {task_class.name!r}: stock peft loads the adapter with other outputs than lorakit")


def _adapter_weights(adapter_dir: Path) -> dict[str, Any]:
    from safetensors.torch import load_file

    return load_file(str(adapter_dir / "adapter_model.safetensors"))
