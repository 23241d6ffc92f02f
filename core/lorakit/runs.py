"""The library API behind the CLI: run (train + evaluate + export), evaluate, predict, export.

The order of a run: the recipe and flags become a ``RunConfig``; the task
loads the base, which is fingerprinted; the task reads and validates the data
(split into train / validation / held-out, plus the retain set);
``Task.prepare_base`` fits the base to the data and names the modules that
train fully; LoRA goes in; the core loop trains; base and adapter are
evaluated on the same held-out examples; the adapter artifact and the report
are written. Each step hands the next one object.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import shutil
from pathlib import Path
from typing import Any, Iterator, Sequence

import yaml

from lorakit.apply import Adapted, AdapterSpec, check_composable, load_base, open_with_adapters, read_adapters
from lorakit.artifact import Manifest, check_base, load_adapter, read_manifest, resolve_adapter_dir, save_adapter
from lorakit.atomic import DiskFull, atomic_dir, atomic_write_text, check_writable, no_room
from lorakit.capabilities import CommandLineInputs, MergedExport, SeveralOptimizers
from lorakit.checkpoints import checkpoint_step, has_checkpoint
from lorakit.config import RunConfig, build
from lorakit.device import inference_device, main_process_first
from lorakit.errors import AdapterError, ConfigError, DataError, OutputError, TrainingError
from lorakit.evaluation import evaluate_pair, evaluation_parts, write_samples
from lorakit.fingerprints import base_fingerprint
from lorakit.hub import transformers_bars_off
from lorakit.lora import trainable_state
from lorakit.merge import merge
from lorakit.model_card import merged_model_card, transformers_class
from lorakit.plugins import get_host
from lorakit.predictions import check_records
from lorakit.progress import console, escape, work_progress
from lorakit.run_data import Splits, load_splits, read_data, read_retain, require_data_paths, require_path
from lorakit.run_folder import CONFIG_FILE, REPORT_FILE, claim_output, read_config
from lorakit.task import Base, Data, Task
from lorakit.threads import configure as configure_threads


@dataclasses.dataclass
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
    from lorakit.recipes import load_run_config

    return load_run_config(target, flags)


# -- run ------------------------------------------------------------------------


@dataclasses.dataclass
class TrainingModel:
    """A base with fresh LoRA, ready for the loop, and what it was made from."""

    task: Task
    base: Base
    base_fingerprint: str
    splits: Splits
    targets: Any
    modules_to_save: list[str]
    model: Any
    adapter_weights: set[str]


def training_model(task: Task, config: RunConfig, measuring: bool = False) -> TrainingModel:
    """Load and fingerprint the base (full precision), read the data, let the
    task fit the base to it (``measuring``: for ``lorakit plan``), hold the
    frozen base as ``base_dtype`` says, turn on gradient checkpointing if
    asked, and inject seeded LoRA (its dropout, and the norm or activation
    outputs it reads, recomputed in the backward pass unless
    ``recompute_dropout`` / ``recompute_inputs`` are off)."""
    from accelerate.utils import set_seed

    from lorakit.lora import check_targets, inject
    from lorakit.lora_dropout import recompute_lora_dropout
    from lorakit.lora_inputs import recompute_lora_inputs
    from lorakit.memory import enable_gradient_checkpointing, hold_base, trainable_to_fp32

    base = load_base(task, config.base)
    base_print = base_fingerprint(base, task.name)
    with main_process_first():  # several processes: one transcribes and caches, the others read its cache
        splits = load_splits(task, base, config)
    # Whatever a task draws while fitting the base (new rows of a head, noise)
    # is the same in every process and every run: torch's own seed is not.
    set_seed(config.train.seed)
    chosen = list(task.prepare_base(base, Data(splits.train, splits.summary, measuring=measuring)))
    targets = config.lora.targets or task.lora_targets
    to_save = list(config.lora.modules_to_save if config.lora.modules_to_save is not None else chosen)
    check_targets(base.model, targets)
    base.model = hold_base(base.model, config.base_dtype, keep=to_save)
    set_seed(config.train.seed)  # LoRA's random init, dropout and everything after it
    model = inject(base.model, config.lora, targets, to_save)
    trainable_to_fp32(model)
    if config.train.recompute_dropout:
        recompute_lora_dropout(model)
    if config.train.recompute_inputs:
        recompute_lora_inputs(model)
    if config.train.gradient_checkpointing:
        enable_gradient_checkpointing(base.model, task.name)
    adapter_weights = {name for name, p in model.named_parameters() if p.requires_grad}
    return TrainingModel(task, base, base_print, splits, targets, to_save, model, adapter_weights)


def run(config: RunConfig, resume: bool = False, evaluate: bool = True, stop_after: int | None = None,
        show_progress: bool = True) -> RunOutcome:
    """Train an adapter, evaluate base vs adapter on held-out data, export the adapter."""
    from lorakit.trainer import watched_metric

    task = make_task(config)
    if not config.data.path:
        raise ConfigError(f"no training data: pass --data DIR (the folder of {task.name} examples)")
    watched_metric(task, config.train.metric)  # a mistyped name is said before the base loads
    config = config.with_absolute_data_paths()
    require_data_paths(task, config)
    with claim_output(config, resume) as run_dir, _no_room_explained(run_dir):
        return _train_and_export(task, config, run_dir, resume, evaluate, stop_after, show_progress)


def _train_and_export(task: Task, config: RunConfig, run_dir: Path, resume: bool, evaluate: bool,
                      stop_after: int | None, show_progress: bool) -> RunOutcome:
    from accelerate.utils import set_seed

    from lorakit.device import describe, make_accelerator
    from lorakit.lora import count_parameters, lora_layers_by_part
    from lorakit.trainer import Trainer

    accelerator = make_accelerator(config.train.precision, config.base_dtype)
    threads = configure_threads(config.train.threads, accelerator.num_processes)
    if resume and not has_checkpoint(run_dir / "checkpoints" / "last"):
        resume = _start_again(run_dir, accelerator)
    made = training_model(task, config)
    base, splits, model, targets, to_save = made.base, made.splits, made.model, made.targets, made.modules_to_save
    base_print, adapter_weights = made.base_fingerprint, made.adapter_weights
    trainable, total = count_parameters(model)  # the adapter's, before any auxiliary module trains
    if isinstance(task, SeveralOptimizers):
        task.prepare_training(base, model)
    if accelerator.num_processes > 1:
        # The same LoRA init everywhere (seeded above), then each process its
        # own dropout and noise; one process keeps the single-seed stream.
        set_seed(config.train.seed, device_specific=True)
    if accelerator.is_main_process:
        retain = (f"; retain: {len(splits.replay_pool)} replayed, {len(splits.retain_test)} held out"
                  if splits.retain_test or splits.replay_pool else "")
        console.print(f"[bold]{task.name}[/bold] on {escape(config.base)}: {len(splits.train)} train, {len(splits.val)} "
                      f"validation, {len(splits.test)} held-out examples{retain}; device {describe(accelerator)}, "
                      f"{threads.describe()}")
        whole = f"; trained fully: {escape(', '.join(to_save))}" if to_save else ""
        parts = lora_layers_by_part(model)
        layers = f"{sum(parts.values())} layers ({', '.join(f'{part} {count}' for part, count in parts.items())})"
        console.print(f"LoRA r={config.lora.r} on {escape(str(targets))}: {escape(layers)}, {trainable:,} trainable "
                      f"of {total:,} parameters ({100 * trainable / total:.2f}%){whole}")
    trainer = Trainer(task, base, model, splits.train, splits.val, config.train, accelerator, run_dir,
                      replay_pool=splits.replay_pool, replay=config.data.replay, show_progress=show_progress,
                      best_keys=adapter_weights)
    if not resume and accelerator.is_main_process:
        run_dir.mkdir(parents=True, exist_ok=True)
        atomic_write_text(run_dir / CONFIG_FILE, yaml.safe_dump(config.to_dict(), sort_keys=False))
    accelerator.wait_for_everyone()
    try:
        with _out_of_memory_explained(config):
            result = trainer.fit(resume=resume, stop_after=stop_after)
    except BaseException:
        # A run that dies before its first checkpoint has nothing to resume:
        # leave no folder behind, so the same command can simply be rerun.
        if not resume and accelerator.is_main_process and not has_checkpoint(run_dir / "checkpoints" / "last"):
            shutil.rmtree(run_dir, ignore_errors=True)
        raise
    if result.interrupted or not accelerator.is_main_process:
        return RunOutcome(run_dir, None, result, {})
    model = trainer.trained_model()
    if config.base_dtype != "fp32":
        state = {k: v for k, v in trainable_state(model).items() if k in adapter_weights}
        # Every reference to the reduced base goes (accelerate keeps the
        # prepared model and optimizers) before the full-precision one loads.
        del trainer, model, made, base
        accelerator.free_memory()
        base, model = _on_full_precision_base(task, config, targets, to_save, state)
    report: dict[str, Any] = {}
    if evaluate:  # base and adapter on the held-out sets, then the samples: minutes on a real base
        with work_progress("evaluating base and adapter", evaluation_parts(task, splits, samples=True),
                           enabled=show_progress) as advance:
            report = evaluate_pair(task, base, model, splits, advance)
            with atomic_dir(run_dir / "samples", replace=True) as samples:
                write_samples(task, base, model, splits.test, samples, advance)
    manifest = Manifest(
        task=task.name, base=base.name, base_fingerprint=base_print, targets=targets, r=config.lora.r,
        alpha=config.lora.alpha, dropout=config.lora.dropout, rslora=config.lora.rslora, dora=config.lora.dora,
        modules_to_save=list(to_save), trigger_words=task.trigger_words(), data=splits.describe(),
        metrics=report, options=dataclasses.asdict(task.options), training={"steps": result.steps, "epochs": result.epochs, "best_step": result.best_step,
                                  "stopped_early": result.stopped_early, "metric": config.train.metric},
    )
    adapter_dir = save_adapter(model, run_dir / "adapter", manifest, replace=True)
    atomic_write_text(run_dir / REPORT_FILE, json.dumps(report, indent=2) + "\n")
    return RunOutcome(run_dir, adapter_dir, result, report)


@contextlib.contextmanager
def _out_of_memory_explained(config: RunConfig) -> Iterator[None]:
    """An allocation that fails (GPU or CPU) as one message naming the settings that drive memory."""
    import torch

    try:
        yield
    except (torch.OutOfMemoryError, MemoryError, RuntimeError) as exc:
        text = str(exc)
        if not isinstance(exc, (torch.OutOfMemoryError, MemoryError)) and "can't allocate memory" not in text:
            raise
        where = "GPU" if isinstance(exc, torch.OutOfMemoryError) else "memory"
        raise TrainingError(
            f"training ran out of {where} ({text.splitlines()[0] if text else type(exc).__name__}) with "
            f"train.batch_size {config.train.batch_size}, lora.r {config.lora.r}, base_dtype {config.base_dtype}, "
            f"gradient_checkpointing {config.train.gradient_checkpointing}. Lower --train.batch_size (raise "
            "--train.grad_accum to keep the effective batch), turn on --train.gradient_checkpointing, or hold the "
            "base in --base_dtype bf16; `lorakit plan` predicts what fits") from None


@contextlib.contextmanager
def _no_room_explained(run_dir: Path) -> Iterator[None]:
    """A write that found no room (a full disk, a quota, ``ulimit -f``) as one
    message naming the path and what the run kept: its last checkpoint, which
    --resume continues from once there is space."""
    try:
        yield
    except (OSError, RuntimeError, DiskFull) as exc:
        reason = exc.reason if isinstance(exc, DiskFull) else no_room(exc, run_dir)
        if not reason:
            raise
        path = exc.path if isinstance(exc, DiskFull) else getattr(exc, "filename", None) or run_dir
        step = checkpoint_step(run_dir / "checkpoints" / "last")
        if step is not None:
            kept = (f"the run is kept up to its last checkpoint (step {step}); free space (or raise the limit) and "
                    "continue it with the same command plus --resume")
        elif (run_dir / CONFIG_FILE).is_file():
            kept = "the run has no checkpoint yet; free space (or raise the limit) and rerun it with --resume"
        else:
            kept = "the run had no checkpoint yet; free space (or raise the limit) and run it again without --resume"
        raise OutputError(f"{reason} while writing {path}: {kept}") from None


def _start_again(run_dir: Path, accelerator: Any) -> bool:
    """A run killed before its first checkpoint has nothing to resume: its
    log goes and it starts from the beginning (returns False: not resuming)."""
    if accelerator.is_main_process:
        console.print(f"{escape(str(run_dir))} has no checkpoint yet (the run stopped before its first one): "
                      "starting it again from the beginning")
        (run_dir / "log.jsonl").unlink(missing_ok=True)
        shutil.rmtree(run_dir / "tb", ignore_errors=True)
        shutil.rmtree(run_dir / "checkpoints", ignore_errors=True)
    accelerator.wait_for_everyone()
    return False


def _on_full_precision_base(task: Task, config: RunConfig, targets: Any, to_save: list[str],
                            state: dict[str, Any]) -> tuple[Base, Any]:
    """The trained LoRA weights on a freshly loaded full-precision base: a
    bf16 or 4-bit base only saves memory while training; the report is
    measured the way `lorakit evaluate` and export will load it."""
    import gc

    import torch

    from lorakit.lora import inject, load_trainable_state

    gc.collect()  # the reduced base goes before the full one comes
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
    base = load_base(task, config.base)
    task.prepare_base(base, None)
    model = inject(base.model, config.lora, targets, to_save)
    load_trainable_state(model, state)
    return base, model.to(inference_device())


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
        check_base(manifest, base_fingerprint(base, task.name), adapter_dir, task.name)
    task.prepare_base(base, None)
    model = load_adapter(base.model, adapter_dir)
    model.eval().to(inference_device())
    configure_threads()
    return task, base, model, manifest, adapter_dir


def evaluate_run(run_dir: str | Path, data: str | None = None, retain: str | None = None,
                 ignore_base_mismatch: bool = False) -> dict[str, Any]:
    """Base vs adapter of a finished run, on given data or the run's own held-out split."""
    run_dir = Path(run_dir)
    require_held_out_paths(run_dir, data, retain)
    task, base, model, manifest, _ = open_adapter(run_dir, ignore_base_mismatch=ignore_base_mismatch)
    splits = held_out(task, base, run_dir, data, retain)
    with work_progress("evaluating base and adapter", evaluation_parts(task, splits), enabled=None) as advance:
        return evaluate_pair(task, base, model, splits, advance)


def require_held_out_paths(run_dir: Path | None, data: str | None, retain: str | None) -> None:
    """Refuse, before any model loads, a missing ``--data`` / ``--retain``,
    or a data path of the run (its config.yaml) that ``held_out`` would read
    and that is gone: the run's data moved since it trained."""
    require_path(data, "--data", "examples to evaluate on")
    require_path(retain, "--retain", "examples of the base's old domain")
    config = _run_config(run_dir)
    if config is None:
        return
    needed = ([] if data else ["path", "eval_path"]) + ([] if retain else ["retain"])
    for key in needed:
        path = getattr(config.data, key)
        flag, part = ("--retain", "retain set is") if key == "retain" else ("--data", "held-out examples are")
        if path and not Path(path).exists():
            raise DataError(f"{path} (data.{key} in {run_dir / CONFIG_FILE}) no longer exists, and the run's "
                            f"{part} read from it: put it back, or pass {flag} DIR (examples the adapter did not "
                            "train on)")


def held_out(task: Task, base: Base, run_dir: Path | None, data: str | None = None,
             retain: str | None = None) -> Splits:
    """What ``evaluate`` compares on: the run's held-out split and retain set
    (read as the run read them), ``data`` / ``retain`` folders instead; a
    part given is not read from the run."""
    config = _run_config(run_dir)
    splits = Splits([], [], [])
    if config is not None and not data:
        splits = load_splits(task, base, config, with_retain=not retain)
    elif config is not None and not retain and config.data.retain:
        splits.retain_test, splits.replay_pool = read_retain(task, base, config)
    if data:
        splits.test = read_data(task, base, data, "--data").examples
    if retain:
        splits.retain_test = read_data(task, base, retain, "--retain", role="retain").examples
    if not splits.test and not splits.retain_test:
        raise ConfigError(f"nothing to evaluate: {run_dir} has no {CONFIG_FILE}; pass --data DIR")
    return splits


def _run_config(run_dir: Path | None) -> RunConfig | None:
    """The config a run was trained with, None without a run folder."""
    if run_dir is not None and (Path(run_dir) / CONFIG_FILE).is_file():
        return read_config(run_dir)
    return None


def open_composed(task_name: str, adapters: Sequence[tuple[str | Path, float]], base_name: str | None = None,
                  ignore_base_mismatch: bool = False, options: dict[str, Any] | None = None) -> tuple[Task, Adapted]:
    """The task and its base with ``adapters`` merged in at their weights,
    refused before any model loads when they cannot apply together."""
    specs = read_adapters(adapters)
    check_composable(specs, task_name, same_base=not ignore_base_mismatch)
    # The first adapter's options (a trigger word, a speaker slot...) unless
    # the user says otherwise now, as for one adapter.
    saved = specs[0].manifest.options if specs and specs[0].manifest else {}
    _note_differing_options([str(path) for path, _ in adapters], specs, options or {})
    task = make_task(RunConfig(task=task_name, options={**saved, **(options or {})}))
    return task, open_with_adapters(task, specs, base_name, ignore_base_mismatch)


def _note_differing_options(names: Sequence[str], specs: Sequence[AdapterSpec], given: dict[str, Any]) -> None:
    """Say which saved options the adapters disagree on (two voices' speaker
    slots, two trigger words) and that the first adapter's are used: silent,
    the second voice would speak through the first's slot unasked."""
    saved = [spec.manifest.options if spec.manifest else {} for spec in specs]
    for key in sorted({key for options in saved[1:] for key in options} - set(given)):
        values = [options.get(key) for options in saved]
        if any(value != values[0] for value in values[1:]):
            each = ", ".join(f"{name} {value!r}" for name, value in zip(names, values))
            console.print(f"note: the adapters differ in option {escape(key)} ({escape(each)}); predicting with the "
                          f"first's, {escape(repr(values[0]))} (--{escape(key)} VALUE chooses another)")


def prediction_inputs(task_name: str, inputs: Sequence[Any], options: dict[str, Any] | None = None,
                      input_flags: dict[str, Any] | None = None) -> tuple[Task, list[Any]]:
    """The task ``predict`` runs (with ``options``, no base loaded) and the
    inputs it gets: ``inputs`` and ``input_flags`` as the task reads them."""
    probe = make_task(RunConfig(task=task_name, options=options or {}))
    if isinstance(probe, CommandLineInputs):
        inputs = probe.prediction_inputs(inputs, input_flags or {})
    if not inputs:
        wanted = probe.inputs_help if isinstance(probe, CommandLineInputs) else "input files or --text"
        raise ConfigError(f"nothing to predict: give {wanted}")
    return probe, list(inputs)


def predict(task_name: str, inputs: Sequence[Any],
            adapter: str | Path | Sequence[tuple[str | Path, float]] | None = None, base_name: str | None = None,
            options: dict[str, Any] | None = None, ignore_base_mismatch: bool = False,
            input_flags: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """Predictions of the base, of the base with ``adapter`` (one folder)
    merged in for speed, or with several ``(folder, weight)`` merged at their
    weights. ``input_flags`` are command-line inputs the task turns into ``inputs``."""
    import torch

    probe, inputs = prediction_inputs(task_name, inputs, options, input_flags)
    if adapter and isinstance(adapter, (str, Path)):
        task, base, model, manifest, _ = open_adapter(adapter, base_name, ignore_base_mismatch, options)
        if task.name != task_name:
            raise AdapterError(f"{adapter} is a {task.name!r} adapter, not a {task_name!r} one")
        model = merge(model)
    elif adapter:
        task, adapted = open_composed(task_name, adapter, base_name, ignore_base_mismatch, options)
        base, model = adapted.base, adapted.model
    else:
        task = probe
        base = load_base(task, base_name or "demo")
        task.prepare_base(base, None)
        model = base.model.to(inference_device())
        configure_threads()
    model.eval()
    with torch.inference_mode():
        return check_records(task.name, task.predict(base, model, inputs), inputs)


def export_merged(run: str | Path, out: str | Path, ignore_base_mismatch: bool = False, tolerance: float = 1e-4,
                  format: str = "merged") -> float:
    """Write the base with the adapter merged in; refuse if merging changes outputs.

    ``format`` is ``merged`` (the model's own format) or one of the task's
    ``MergedExport.export_formats``. Returns the largest output difference
    between merged and unmerged models. A merged folder gets a model card
    (``README.md``) unless the task's ``save_merged`` wrote its own.
    """
    import torch

    out = Path(out)
    if out.exists():
        raise OutputError(f"{out} already exists; choose another folder for --{format} or remove it")
    check_writable(out, f"--{format}", folder=True)
    if format != "merged":
        check_export_format(run, format)
    task, base, model, manifest, adapter_dir = open_adapter(run, ignore_base_mismatch=ignore_base_mismatch)
    if not isinstance(task, MergedExport) and not hasattr(base.model, "save_pretrained"):
        raise AdapterError(f"the {task.name!r} task has no merged export (its model is not a Hugging Face model); "
                           f"use the adapter folder {adapter_dir} with its base instead")
    with torch.inference_mode():
        before = task.probe(base, model).float()
        merged = merge(model)
        after = task.probe(base, merged).float()
    difference = float((before - after).abs().max())
    scale = max(1.0, float(before.abs().max()))
    if not difference <= tolerance * scale:
        raise AdapterError(f"merging {adapter_dir} changes the model's outputs by {difference:.3g} "
                           f"(tolerance {tolerance * scale:.3g}); the merged model was not written")
    merged = merged.to("cpu")  # written from the CPU, whatever device it was checked on
    with atomic_dir(out) as tmp, transformers_bars_off():
        if format != "merged":
            task.save_export(base, merged, tmp, format, manifest)
        elif isinstance(task, MergedExport):
            task.save_merged(base, merged, tmp)
        else:
            save_pretrained(base, merged, tmp)
        if format == "merged" and not (tmp / "README.md").exists():  # a task's own card stays
            card = merged_model_card(manifest, transformers_class(merged), difference)
            (tmp / "README.md").write_text(card, encoding="utf-8")
    return difference


def check_export_format(run: str | Path, format: str) -> None:
    """Refuse, before any model loads, a format the run's task does not write."""
    manifest = read_manifest(resolve_adapter_dir(run))
    task_class = get_host().task(manifest.task)
    formats = getattr(task_class, "export_formats", {}) if issubclass(task_class, MergedExport) else {}
    if format not in formats:
        offered = ", ".join(f"--{name}" for name in ["merged", *formats])
        raise ConfigError(f"lorakit export --{format}: the {manifest.task} task does not write that format "
                          f"(it offers {offered})")


def save_pretrained(base: Base, model: Any, path: Path) -> None:
    """The Hugging Face way: the model and its processor, weights as safetensors."""
    model.save_pretrained(path, safe_serialization=True)
    if base.processor is not None and hasattr(base.processor, "save_pretrained"):
        base.processor.save_pretrained(path)
