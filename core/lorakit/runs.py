"""The library API behind the CLI: run (train + evaluate + export), evaluate, predict, export.

A run folder holds::

    config.yaml            the resolved config (a resume must match it)
    log.jsonl, tb/         metrics
    checkpoints/last/      resumable state; checkpoints/best/ the best weights
    adapter/               the adapter artifact (peft folder + lorakit.json + README.md)
    report.json            base vs adapter metrics on the held-out split (and the retain set)
"""

from __future__ import annotations

import dataclasses
import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import yaml

from lorakit.adapters import (
    Manifest,
    check_base,
    fingerprint,
    load_adapter,
    merge,
    read_manifest,
    resolve_adapter_dir,
    save_adapter,
)
from lorakit.atomic import atomic_dir, atomic_write_text
from lorakit.config import RunConfig, build
from lorakit.data.splits import split_examples
from lorakit.errors import AdapterError, ConfigError, DataError, OutputError
from lorakit.plugins import get_host
from lorakit.progress import console
from lorakit.task import Base, Task

CONFIG_FILE = "config.yaml"
REPORT_FILE = "report.json"


@dataclass
class Splits:
    train: list[Any]
    val: list[Any]
    test: list[Any]
    replay_pool: list[Any] = field(default_factory=list)
    retain_test: list[Any] = field(default_factory=list)


@dataclass
class RunOutcome:
    run_dir: Path
    adapter_dir: Path | None
    train: Any
    report: dict[str, Any]


def make_task(config: RunConfig) -> Task:
    """The task instance of a config, its options checked against the task."""
    task_class = get_host().task(config.task)
    options = build(task_class.options_class, config.options, "options.")
    return task_class(options)


def load_config(target: str, flags: list[str]) -> RunConfig:
    """A RunConfig from a recipe path/name or task name plus command-line flags."""
    from lorakit.recipes import load_run_config, parse_flags, recipe_values
    from lorakit.task import options_fields

    task_name = dict(parse_flags(flags)).get("task") or recipe_values(target).get("task") or target
    task_class = get_host().task(str(task_name))
    return load_run_config(target, flags, options_fields(task_class.options_class), task_class.defaults,
                           task_class.aliases)


# -- run ------------------------------------------------------------------------


def run(config: RunConfig, resume: bool = False, evaluate: bool = True, stop_after: int | None = None,
        show_progress: bool = True) -> RunOutcome:
    """Train an adapter, evaluate base vs adapter on held-out data, export the adapter."""
    from lorakit.device import describe, make_accelerator
    from lorakit.lora import count_parameters, inject
    from accelerate.utils import set_seed
    from rich.markup import escape

    from lorakit.trainer import Trainer

    task = make_task(config)
    if not config.data.path:
        raise ConfigError(f"no training data: pass --data DIR (the folder of {task.name} examples)")
    run_dir = prepare_output(config, resume)
    base = load_base(task, config.base)
    base_print = fingerprint(base.model)
    splits = load_splits(task, base, config)
    targets = config.lora.targets or task.lora_targets(base)
    to_save = config.lora.modules_to_save if config.lora.modules_to_save is not None else list(task.modules_to_save(base, splits.train))
    set_seed(config.train.seed)  # LoRA's random init, dropout and everything after it
    model = inject(base.model, config.lora, targets, to_save)
    trainable, total = count_parameters(model)  # the adapter's, before any auxiliary module trains
    adapter_weights = {name for name, p in model.named_parameters() if p.requires_grad}
    task.prepare_training(base, model)
    accelerator = make_accelerator(config.train.precision)
    if accelerator.is_main_process:
        console.print(f"[bold]{task.name}[/bold] on {config.base}: {len(splits.train)} train, {len(splits.val)} validation, "
                      f"{len(splits.test)} held-out examples; device {describe(accelerator)}")
        console.print(f"LoRA r={config.lora.r} on {escape(str(targets))}: {trainable:,} trainable of {total:,} "
                      f"parameters ({100 * trainable / total:.2f}%)")
    trainer = Trainer(task, base, model, splits.train, splits.val, config.train, accelerator, run_dir,
                      replay_pool=splits.replay_pool, replay=config.data.replay, show_progress=show_progress,
                      best_keys=adapter_weights)
    if not resume and accelerator.is_main_process:
        run_dir.mkdir(parents=True, exist_ok=True)
        atomic_write_text(run_dir / CONFIG_FILE, yaml.safe_dump(config.to_dict(), sort_keys=False))
    accelerator.wait_for_everyone()
    try:
        result = trainer.fit(resume=resume, stop_after=stop_after)
    except BaseException:
        # A run that dies before its first checkpoint has nothing to resume:
        # leave no folder behind, so the same command can simply be rerun.
        if not resume and accelerator.is_main_process and not (run_dir / "checkpoints").exists():
            shutil.rmtree(run_dir, ignore_errors=True)
        raise
    if result.interrupted or not accelerator.is_main_process:
        return RunOutcome(run_dir, None, result, {})
    model = trainer.unwrapped
    report = evaluate_pair(task, base, model, splits, show_progress) if evaluate else {}
    if evaluate:
        write_samples(task, base, model, splits.test, run_dir / "samples")
    manifest = Manifest(
        task=task.name, base=base.name, base_fingerprint=base_print, targets=targets, r=config.lora.r,
        alpha=config.lora.alpha, dropout=config.lora.dropout, rslora=config.lora.rslora, dora=config.lora.dora,
        modules_to_save=list(to_save), trigger_words=task.trigger_words(), data=task.summarize_data(splits.train),
        metrics=report, options=dataclasses.asdict(task.options), training={"steps": result.steps, "epochs": result.epochs, "best_step": result.best_step,
                                  "stopped_early": result.stopped_early, "metric": config.train.metric},
    )
    adapter_dir = save_adapter(model, run_dir / "adapter", manifest, replace=True)
    atomic_write_text(run_dir / REPORT_FILE, json.dumps(report, indent=2) + "\n")
    return RunOutcome(run_dir, adapter_dir, result, report)


def prepare_output(config: RunConfig, resume: bool) -> Path:
    """The run folder: new and empty, or (with resume) an earlier run of the same config."""
    if config.output is None:
        if resume:
            raise ConfigError("--resume needs --output RUN_DIR, the folder of the run to continue")
        return next_run_dir(config.task)
    run_dir = Path(config.output)
    saved = run_dir / CONFIG_FILE
    if resume:
        if not saved.is_file():
            raise OutputError(f"{run_dir} holds no run to resume (no {CONFIG_FILE}); start it without --resume")
        earlier = build(RunConfig, yaml.safe_load(saved.read_text(encoding="utf-8")))
        differences = _differences(earlier.to_dict(), config.to_dict())
        if differences:
            raise ConfigError(f"the run in {run_dir} was started with another config ({'; '.join(differences)}); "
                              "resume with the same recipe and flags, or start a new --output")
        return run_dir
    if run_dir.exists() and any(run_dir.iterdir()):
        raise OutputError(f"{run_dir} already holds files (a run?); choose another --output, "
                          "add --resume to continue that run, or remove the folder")
    return run_dir


def next_run_dir(task: str, root: Path = Path("runs")) -> Path:
    n = 1
    while (root / f"{task}-{n}").exists():
        n += 1
    return root / f"{task}-{n}"


def _differences(a: dict, b: dict, prefix: str = "") -> list[str]:
    out = []
    for key in sorted(set(a) | set(b)):
        va, vb = a.get(key), b.get(key)
        if isinstance(va, dict) and isinstance(vb, dict):
            out += _differences(va, vb, f"{prefix}{key}.")
        elif va != vb:
            out.append(f"{prefix}{key}: {va!r} then, {vb!r} now")
    return out


def load_base(task: Task, name: str) -> Base:
    """Load a base through its task and record a local folder by its absolute path."""
    base = task.load_base(name)
    if not base.name:
        base.name = name
    if Path(name).is_dir():
        base.name = str(Path(name).resolve())
    return base


def load_splits(task: Task, base: Base, config: RunConfig) -> Splits:
    """Train/validation/held-out splits (and the retain set), read and validated."""
    seed = config.train.seed
    examples = _read(task, base, config.data.path, "data.path")
    if config.data.eval_path:
        test = _read(task, base, config.data.eval_path, "data.eval_path")
        val, train = split_examples(examples, [config.data.val_fraction], seed)
    else:
        test, val, train = split_examples(examples, [config.data.test_fraction, config.data.val_fraction], seed)
    if config.data.max_examples:
        train = train[: config.data.max_examples]
    splits = Splits(train, val, test)
    if config.data.retain:
        retain = _read(task, base, config.data.retain, "data.retain", role="retain")
        splits.retain_test, splits.replay_pool = split_examples(retain, [0.5], seed)
    return splits


def _read(task: Task, base: Base, path: str, field_name: str, role: str = "data") -> list[Any]:
    examples = task.load_data(Path(path), base, role=role)
    if not examples:
        raise DataError(f"{path} ({field_name}) holds no examples")
    return examples


def evaluate_pair(task: Task, base: Base, model: Any, splits: Splits, show_progress: bool = True) -> dict[str, Any]:
    """Metrics of the base (adapter disabled) and the adapter on the same held-out sets."""
    import torch

    report: dict[str, Any] = {}
    sets = {"test": splits.test, "retain": splits.retain_test}
    model.eval()
    for split, examples in sets.items():
        if not examples:
            continue
        with torch.inference_mode():
            with model.disable_adapter():
                base_scores = task.evaluate(base, model, examples)
            adapter_scores = task.evaluate(base, model, examples)
        report[split] = {"examples": len(examples), "base": _floats(base_scores), "adapter": _floats(adapter_scores)}
    return report


def write_samples(task: Task, base: Base, model: Any, examples: list[Any], folder: Path) -> None:
    """The task's listenable/viewable outputs of base and adapter, side by side."""
    import torch

    if not examples:
        return
    with torch.inference_mode():
        with model.disable_adapter():
            task.write_samples(base, model, examples, folder / "base")
        task.write_samples(base, model, examples, folder / "adapter")


def _floats(scores: dict[str, Any]) -> dict[str, float]:
    return {k: float(v) for k, v in scores.items()}


# -- using an adapter -------------------------------------------------------------


def open_adapter(adapter: str | Path, base_name: str | None = None, ignore_base_mismatch: bool = False,
                 options: dict[str, Any] | None = None) -> tuple[Task, Base, Any, Manifest, Path]:
    """Load the base an adapter was made for (or ``base_name``), check it, and wrap it."""
    adapter_dir = resolve_adapter_dir(adapter)
    manifest = read_manifest(adapter_dir)
    # The options the adapter was trained with (a trigger word, a speaker
    # slot...), unless the user says otherwise now.
    config = RunConfig(task=manifest.task, base=base_name or manifest.base, options={**manifest.options, **(options or {})})
    task = make_task(config)
    base = load_base(task, config.base)
    if not ignore_base_mismatch:
        check_base(manifest, fingerprint(base.model), adapter_dir, task.name)
    model = load_adapter(base.model, adapter_dir)
    model.eval()
    return task, base, model, manifest, adapter_dir


def evaluate_run(run_dir: str | Path, data: str | None = None, retain: str | None = None,
                 ignore_base_mismatch: bool = False, show_progress: bool = True) -> dict[str, Any]:
    """Base vs adapter of a finished run, on given data or the run's own held-out split."""
    run_dir = Path(run_dir)
    task, base, model, manifest, _ = open_adapter(run_dir, ignore_base_mismatch=ignore_base_mismatch)
    saved = run_dir / CONFIG_FILE
    if saved.is_file():
        config = build(RunConfig, yaml.safe_load(saved.read_text(encoding="utf-8")))
        splits = load_splits(task, base, config)
    else:
        splits = Splits([], [], [])
    if data:
        splits.test = _read(task, base, data, "--data")
    if retain:
        splits.retain_test = _read(task, base, retain, "--retain", role="retain")
    if not splits.test and not splits.retain_test:
        raise ConfigError(f"nothing to evaluate: {run_dir} has no {CONFIG_FILE}; pass --data DIR")
    return evaluate_pair(task, base, model, splits, show_progress)


def predict(task_name: str, inputs: Sequence[Any], adapter: str | None = None, base_name: str | None = None,
            options: dict[str, Any] | None = None, ignore_base_mismatch: bool = False,
            input_flags: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """Predictions of the base, or of the base with an adapter merged in for speed.
    ``input_flags`` are command-line inputs the task turns into ``inputs``."""
    import torch

    if input_flags is not None:
        task = make_task(RunConfig(task=task_name, options=options or {}))
        inputs = task.prediction_inputs(inputs, input_flags)
    if not inputs:
        raise ConfigError("nothing to predict: give inputs (e.g. image files), --text, or the task's input flags")

    if adapter:
        task, base, model, manifest, _ = open_adapter(adapter, base_name, ignore_base_mismatch, options)
        if task.name != task_name:
            raise AdapterError(f"{adapter} is a {task.name!r} adapter, not a {task_name!r} one")
        model = merge(model)
    else:
        task = make_task(RunConfig(task=task_name, base=base_name or "demo", options=options or {}))
        base = load_base(task, base_name or "demo")
        model = base.model
    model.eval()
    with torch.inference_mode():
        return task.predict(base, model, inputs)


def export_merged(run: str | Path, out: str | Path, ignore_base_mismatch: bool = False, tolerance: float = 1e-4) -> float:
    """Write the base with the adapter merged in; refuse if merging changes outputs.

    Returns the largest output difference between merged and unmerged models.
    """
    import torch

    out = Path(out)
    if out.exists():
        raise OutputError(f"{out} already exists; choose another folder for --merged or remove it")
    task, base, model, manifest, adapter_dir = open_adapter(run, ignore_base_mismatch=ignore_base_mismatch)
    with torch.inference_mode():
        before = task.probe(base, model).float()
        merged = merge(model)
        after = task.probe(base, merged).float()
    difference = float((before - after).abs().max())
    scale = max(1.0, float(before.abs().max()))
    if not difference <= tolerance * scale:
        raise AdapterError(f"merging {adapter_dir} changes the model's outputs by {difference:.3g} "
                           f"(tolerance {tolerance * scale:.3g}); the merged model was not written")
    with atomic_dir(out) as tmp:
        task.save_merged(base, merged, tmp)
    return difference
