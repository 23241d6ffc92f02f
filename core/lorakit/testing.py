"""A conformance kit for plugin authors: call it from your own tests.

    from lorakit.testing import check_task

    def test_my_task_meets_the_contract(tmp_path):
        check_task(MyTask, data="tests/data", workdir=tmp_path, predict_args=["tests/data/a.png"])

It checks the task class statically first (the seven required methods,
metric directions, an options dataclass whose fields all have defaults, a
kebab-case name, non-empty ``lora_targets``, no leftovers of contract 1, the
methods of each capability the task declares), then runs a short round trip
through the real core on a private plugin host (so an installed copy of the
plugin does not get in the way): train a few steps, evaluate base vs adapter,
export the adapter, reload it with stock peft (same outputs), run
``lorakit predict TASK --adapter RUN ...`` through the CLI (one record per
input), resume an interrupted run (same weights as an uninterrupted one) and
merge (same outputs). Each capability the task declares is exercised:
several optimizers (groups cover the trainable parameters, the steps name
known groups), command-line inputs (aliases name real config fields),
samples (written for base and adapter), merged export, and predicting in
parts (the parts predicted alone and joined are the input predicted whole).

Every failure is an ``AssertionError`` aimed at the plugin's author: which
step of the contract failed, what lorakit said, and what to fix.
"""

from __future__ import annotations

import contextlib
import dataclasses
import inspect
import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Sequence

from lorakit.capabilities import (CommandLineInputs, MergedExport, OptimizerGroup, PredictsInParts, SeveralOptimizers,
                                  WritesSamples)
from lorakit.task import Task, TaskOptions

REQUIRED = ("load_base", "load_data", "collate", "loss", "evaluate", "predict", "probe")

#: Methods a declared capability must implement (its mixin only raises NotImplementedError).
CAPABILITY_METHODS = {
    SeveralOptimizers: ("optimizer_groups", "training_step"),
    WritesSamples: ("write_samples",),
    MergedExport: ("save_merged",),
    PredictsInParts: ("input_parts",),
}

#: Training steps of the round trip: enough for LoRA to move, few enough to stay fast.
STEPS = 6

#: Names of the round trip's steps, as failures report them.
RUN_STEP = "train, evaluate and export (lorakit run)"
PREDICT_STEP = "predict through the CLI (lorakit predict)"
PARTS_STEP = "predict part by part (input_parts)"
RESUME_STEP = "resume an interrupted run (lorakit run --resume)"
EXPORT_STEP = "merged export (lorakit export --merged)"


@dataclass
class ConformanceReport:
    """What ``check_task`` measured, for a plugin's own assertions."""

    task: str
    metrics: dict[str, Any] = field(default_factory=dict)
    merge_difference: float = 0.0
    #: The records ``lorakit predict`` printed for ``predict_args``.
    predictions: list[dict[str, Any]] = field(default_factory=list)
    checks: list[str] = field(default_factory=list)


# -- static checks ----------------------------------------------------------------


def check_contract(task_class: type[Task]) -> list[str]:
    """Static checks of a Task subclass; returns the names of the checks passed."""
    from lorakit.errors import PluginError
    from lorakit.plugins import check_task_class

    assert inspect.isclass(task_class) and issubclass(task_class, Task), (
        f"{task_class!r} is not a lorakit.api.Task subclass: write `class MyTask(Task)` "
        "with `from lorakit.api import Task`")
    try:
        check_task_class(task_class, "the plugin under test")
    except PluginError as exc:
        raise AssertionError(str(exc)) from None
    name = task_class.name
    missing = [method for method in REQUIRED if getattr(task_class, method) is getattr(Task, method)]
    assert not missing, f"task {name!r} must implement {', '.join(missing)} (the required methods of the Task contract)"
    assert task_class.description, f"task {name!r} needs a one-line description for `lorakit tasks`"
    _check_metrics(task_class)
    _check_options(task_class)
    _check_targets(task_class)
    checks = ["contract"]
    for mixin, methods in CAPABILITY_METHODS.items():
        if issubclass(task_class, mixin):
            unimplemented = [m for m in methods if getattr(task_class, m) is getattr(mixin, m)]
            assert not unimplemented, (f"task {name!r} declares {mixin.__name__} but does not implement "
                                       f"{', '.join(unimplemented)}; implement it or drop the mixin")
    if issubclass(task_class, MergedExport):
        _check_export_formats(task_class)
    if issubclass(task_class, CommandLineInputs):
        _check_command_line_inputs(task_class)
        checks.append("command-line-inputs")
    if issubclass(task_class, PredictsInParts):
        assert task_class.predicts_audio, (
            f"task {name!r} declares PredictsInParts, whose parts are joined as audio; set predicts_audio = True "
            "or drop the mixin")
        assert task_class.part_gap_seconds >= 0, f"task {name!r}: part_gap_seconds must be 0 or more"
    return checks


def _check_export_formats(task_class: type[Task]) -> None:
    formats = task_class.export_formats
    name = task_class.name
    assert isinstance(formats, dict) and all(
        isinstance(k, str) and re.fullmatch(r"[a-z][a-z0-9-]*", k) and k != "merged" and isinstance(v, str)
        for k, v in formats.items()), (
        f"task {name!r}: export_formats must map flag names (lowercase, not 'merged') to what each format is, "
        f"e.g. {{'onnx': 'an ONNX model onnxruntime runs'}}; got {formats!r}")
    assert not formats or task_class.save_export is not MergedExport.save_export, (
        f"task {name!r} declares export_formats {sorted(formats)} but does not implement save_export")


def _check_metrics(task_class: type[Task]) -> None:
    name = task_class.name
    assert isinstance(task_class.metrics, dict) and task_class.metrics, (
        f"task {name!r} must declare metrics, e.g. metrics = {{'accuracy': 'max'}} (the first is the headline)")
    both = sorted(set(task_class.metrics) & set(task_class.optional_metrics))
    assert not both, f"task {name!r}: {both} declared in both metrics and optional_metrics; keep each in one"
    switches = task_class.metric_options
    assert isinstance(switches, dict), f"task {name!r}: metric_options must be a dict of optional metric -> option"
    unknown = sorted(set(switches) - set(task_class.optional_metrics))
    assert not unknown, f"task {name!r}: metric_options names {unknown}, which optional_metrics does not declare"
    options = {f.name for f in dataclasses.fields(task_class.options_class)} \
        if dataclasses.is_dataclass(task_class.options_class) else set()
    bad = {metric: option for metric, option in switches.items() if option not in options}
    assert not bad, f"task {name!r}: metric_options {bad} name no field of {task_class.options_class.__name__}"


def _check_options(task_class: type[Task]) -> None:
    name = task_class.name
    options = task_class.options_class
    assert dataclasses.is_dataclass(options) and isinstance(options, type) and issubclass(options, TaskOptions), (
        f"task {name!r}: options_class must be a @dataclass subclassing lorakit.api.TaskOptions")
    no_default = [f.name for f in dataclasses.fields(options)
                  if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING]
    assert not no_default, (f"task {name!r}: every option needs a default (recipes and flags may leave it out); "
                            f"give {', '.join(no_default)} one")
    try:
        options()
    except Exception as exc:  # the author's __post_init__ refusing its own defaults
        raise AssertionError(f"task {name!r}: {options.__name__}() refuses its own defaults: "
                             f"{type(exc).__name__}: {exc}") from exc


def _check_targets(task_class: type[Task]) -> None:
    name = task_class.name
    targets = task_class.lora_targets
    if isinstance(targets, str):
        assert targets.strip(), f"task {name!r}: lora_targets is an empty regex; name the layers LoRA adapts"
        try:
            re.compile(targets)
        except re.error as exc:
            raise AssertionError(f"task {name!r}: lora_targets {targets!r} is not a valid regex: {exc}") from None
    else:
        assert targets and all(isinstance(t, str) and t for t in targets), (
            f"task {name!r}: lora_targets must name the layers LoRA adapts by default: a list of module name "
            f"suffixes (['q_proj', 'v_proj']) or one regex matching whole module names; got {targets!r}")
    saved = task_class.modules_to_save
    assert not isinstance(saved, str) and all(isinstance(m, str) and m for m in saved), (
        f"task {name!r}: modules_to_save must be a list of module names, got {saved!r}")


def _check_command_line_inputs(task_class: type[Task]) -> None:
    """Aliases name real config fields; input flags and the help are text."""
    from lorakit.config import SECTIONS
    from lorakit.errors import ConfigError
    from lorakit.recipes import TOP_LEVEL, resolve_key
    from lorakit.task import options_fields

    name = task_class.name
    options = options_fields(task_class.options_class)
    for alias, target in dict(task_class.aliases).items():
        try:
            path = resolve_key(str(target), options)
        except ConfigError as exc:
            raise AssertionError(f"task {name!r}: alias --{alias} points to {target!r}, which is no config field "
                                 f"({exc})") from None
        real = (path[0] in TOP_LEVEL if len(path) == 1 else
                path[1] in options if path[0] == "options" else
                path[1] in {f.name for f in dataclasses.fields(SECTIONS[path[0]])})
        assert real, (f"task {name!r}: alias --{alias} points to {target!r}, which is no config field; "
                      "use a field such as 'data.path' or 'options.NAME'")
    flags = task_class.input_flags
    assert not isinstance(flags, str) and all(isinstance(f, str) and f for f in flags), (
        f"task {name!r}: input_flags must be a tuple of flag names, e.g. ('image', 'question'); got {flags!r}")
    clash = sorted(set(flags) & set(options))
    assert not clash, (f"task {name!r}: {', '.join(clash)} is both an input flag and an option; "
                       "`lorakit predict` could not set the option: rename one")
    assert isinstance(task_class.inputs_help, str) and task_class.inputs_help.strip(), (
        f"task {name!r}: inputs_help must say what to give `lorakit predict`")


# -- the round trip ----------------------------------------------------------------


def check_task(task_class: type[Task], data: str | Path, workdir: str | Path, base: str = "demo",
               flags: Sequence[str] = (), steps: int = STEPS,
               predict_args: Sequence[str] | None = None) -> ConformanceReport:
    """The contract, then a train/evaluate/export/reload/predict/resume/merge round trip.

    ``data`` is a small data folder of the task (a few dozen examples are
    enough), ``workdir`` an empty scratch folder (pytest's ``tmp_path``),
    ``flags`` extra ``lorakit run`` flags (e.g. task options), ``steps`` the
    training steps, ``predict_args`` what follows ``lorakit predict TASK
    --adapter RUN`` for a few inputs: files, ``--text "..."``, or the task's
    input flags (``["--image", "a.png", "--question", "what colour?"]``);
    give ``--out`` a path in ``workdir`` when predictions are audio.
    """
    report = ConformanceReport(task_class.name, checks=check_contract(task_class))
    assert predict_args is not None, (
        f"check_task({task_class.__name__}, ...) needs predict_args: the inputs of `lorakit predict "
        f"{task_class.name} --adapter RUN ...` for two or three inputs, e.g. ['photo.png'] or ['--text', 'hello'] "
        "(the kit runs predict through the CLI and wants one record per input)")
    assert steps >= 2, f"steps = {steps}: the resume check needs at least 2 training steps"
    workdir = Path(workdir)
    with _private_host(task_class):
        _round_trip(task_class, report, Path(data), workdir, base, list(flags), steps, list(predict_args))
    return report


def _round_trip(task_class: type[Task], report: ConformanceReport, data: Path, workdir: Path, base: str,
                flags: list[str], steps: int, predict_args: list[str]) -> None:
    from lorakit import runs

    name = task_class.name
    common = ["--data", str(data), "--base", base, "--train.max_steps", str(steps), "--batch_size", "2",
              "--lora.dropout", "0.1", "--val_fraction", "0.2", "--test_fraction", "0.2", *flags]

    def config(folder: str):
        with _step(name, "config", "check the flags given to check_task"):
            return runs.load_config(name, [*common, "--output", str(workdir / folder)])

    if issubclass(task_class, SeveralOptimizers):
        _check_optimizer_groups(task_class, config("groups"))
        report.checks.append("several-optimizers")

    with _step(name, RUN_STEP,
               "a run calls load_base, load_data, prepare_base, collate, loss (or training_step), evaluate, "
               "in that order; check them and the data folder given to check_task"):
        whole = runs.run(config("whole"), show_progress=False)
    _check_report(task_class, whole.report)
    _check_adapter_trained(task_class, whole.adapter_dir, steps)
    report.metrics = whole.report
    report.checks.append("train-evaluate-export")

    if issubclass(task_class, WritesSamples):
        _check_samples(task_class, whole.run_dir / "samples")
        report.checks.append("writes-samples")

    exportable = _check_stock_peft(task_class, base, whole.adapter_dir, whole.run_dir)
    report.checks.append("stock-peft-reload")

    report.predictions = _check_predict_cli(task_class, whole.run_dir, predict_args)
    report.checks.append("predict-cli")

    if issubclass(task_class, PredictsInParts):
        _check_parts(task_class, whole.run_dir, predict_args)
        report.checks.append("predicts-in-parts")

    _check_resume(task_class, config, whole.adapter_dir, steps)
    report.checks.append("exact-resume")

    report.merge_difference = _check_merge(task_class, whole.run_dir, workdir / "merged", exportable)
    report.checks.append("merged-export")


@contextlib.contextmanager
def _private_host(task_class: type[Task]) -> Iterator[Any]:
    """A plugin host holding only ``task_class``, in place of the process-wide
    one for a block: the installed plugins (the one under test among them)
    and their tasks of the same name stay out of the check."""
    from lorakit.errors import PluginError
    from lorakit.plugins import PluginHost, using_host

    host = PluginHost(load_entry_points=False)
    try:
        host.add_task(task_class, plugin="the plugin under test")
    except PluginError as exc:
        raise AssertionError(str(exc)) from None
    with using_host(host):
        yield host


@contextlib.contextmanager
def _step(task: str, step: str, fix: str) -> Iterator[None]:
    """Turn a failure inside one step of the round trip into an AssertionError
    that names the step, what was raised, and what to look at."""
    from lorakit.errors import LorakitError

    try:
        yield
    except AssertionError:
        raise
    except LorakitError as exc:
        raise AssertionError(f"{_where(task, step)}: lorakit refused it: {exc}. To fix: {fix}") from exc
    except Exception as exc:  # the plugin's own code failed; keep its traceback chained
        raise AssertionError(f"{_where(task, step)}: {type(exc).__name__}: {exc}. To fix: {fix}") from exc


def _where(task: str, step: str) -> str:
    return f"task {task!r}, step '{step}'"


def _check_report(task_class: type[Task], report: dict[str, Any]) -> None:
    where = _where(task_class.name, "evaluate")
    assert "test" in report, (f"{where}: the run held out no examples to evaluate; give check_task a data folder "
                              "with a few dozen examples")
    for side in ("base", "adapter"):
        scores = report["test"][side]
        missing = set(task_class.metrics) - set(scores)
        assert not missing, f"{where}: evaluate() did not return {sorted(missing)} (declared in metrics)"
        bad = {k: v for k, v in scores.items() if not math.isfinite(v)}
        assert not bad, f"{where}: evaluate() of the {side} returned non-finite metrics {bad}"


def _check_adapter_trained(task_class: type[Task], adapter_dir: Path, steps: int) -> None:
    """LoRA's B matrices start at zero: after training some must have moved,
    or the loss never reached the adapter."""
    where = _where(task_class.name, "train")
    lora_b = [t for k, t in _adapter_weights(adapter_dir).items() if "lora_B" in k]
    assert lora_b, f"{where}: the adapter holds no LoRA weights; does lora_targets name layers of the base?"
    assert any(bool(t.abs().max() > 0) for t in lora_b), (
        f"{where}: after {steps} training steps every LoRA B weight is still zero: the loss does not reach the "
        "LoRA layers. Compute it through the `model` loss() receives (not base.model or a copy), and make sure "
        "lora_targets names layers the forward pass uses")


def _check_samples(task_class: type[Task], folder: Path) -> None:
    where = _where(task_class.name, "write_samples")
    for side in ("base", "adapter"):
        written = [p for p in (folder / side).rglob("*") if p.is_file()] if (folder / side).is_dir() else []
        assert written, (f"{where}: the task declares WritesSamples, but write_samples wrote nothing into "
                         f"{folder / side}; write a few outputs (files) into the folder it is given")


def _check_optimizer_groups(task_class: type[Task], config: Any) -> None:
    """Before the real run: the groups cover every trainable parameter once,
    and one training_step names only those groups with finite losses."""
    from lorakit import runs
    from lorakit.apply import load_base
    from lorakit.lora import inject
    from lorakit.run_data import load_splits
    from lorakit.task import Data

    name = task_class.name
    with _step(name, "several optimizers: set up", "check load_base, load_data, prepare_base and prepare_training"):
        task = runs.make_task(config)
        base = load_base(task, config.base)
        splits = load_splits(task, base, config)
        to_save = task.prepare_base(base, Data(splits.train, splits.summary))
        model = inject(base.model, config.lora, config.lora.targets or task.lora_targets, to_save)
        task.prepare_training(base, model)
    with _step(name, "optimizer_groups", "return {name: OptimizerGroup(params, lr=..., betas=...)}"):
        groups = task.optimizer_groups(base, model)
    _check_groups(name, groups, model)
    _check_training_step(task, base, model, splits.train[:2], groups)


def _check_groups(name: str, groups: Any, model: Any) -> None:
    where = _where(name, "optimizer_groups")
    assert isinstance(groups, dict) and groups, (
        f"{where}: optimizer_groups must return a non-empty dict {{name: OptimizerGroup(...)}}, got {groups!r}")
    seen: dict[int, str] = {}
    for group_name, group in groups.items():
        assert isinstance(group, OptimizerGroup), (
            f"{where}: optimizer_groups()[{group_name!r}] is a {type(group).__name__}; wrap the parameters as "
            "lorakit.api.OptimizerGroup(params, lr=None, betas=None)")
        for p in group.params:
            assert id(p) not in seen, (f"{where}: a parameter is in groups {seen[id(p)]!r} and {group_name!r}; "
                                       "give each parameter to one group")
            seen[id(p)] = group_name
    trainable = {id(p): n for n, p in model.named_parameters() if p.requires_grad}
    left_out = [n for i, n in trainable.items() if i not in seen]
    assert not left_out, (f"{where}: trainable parameters are in no group ({', '.join(left_out[:3])}"
                          f"{'...' if len(left_out) > 3 else ''}); they would never train")
    frozen = sum(1 for i in seen if i not in trainable)
    assert not frozen, (f"{where}: the groups hold {frozen} parameters that do not require grad; make them "
                        "trainable in prepare_training or leave them out")


def _check_training_step(task: Any, base: Any, model: Any, examples: list[Any], groups: dict[str, Any]) -> None:
    import torch

    where = _where(task.name, "training_step")
    model.train()
    yielded = []
    with _step(task.name, "training_step", "yield (group name, scalar loss) pairs computed through `model`"):
        batch = task.collate(base, examples)
        for item in task.training_step(base, model, batch):
            assert isinstance(item, tuple) and len(item) == 2, (
                f"{where}: training_step must yield (group name, loss) pairs, got {item!r}")
            group, loss = item
            assert group in groups, (f"{where}: training_step yielded a loss for group {group!r}, which "
                                     f"optimizer_groups does not have ({', '.join(groups)})")
            assert isinstance(loss, torch.Tensor) and loss.numel() == 1 and loss.requires_grad, (
                f"{where}: the {group!r} loss must be a scalar tensor with gradients, got {loss!r}")
            assert bool(torch.isfinite(loss.detach())), f"{where}: the {group!r} loss is {float(loss)}"
            yielded.append(group)
    assert yielded, f"{where}: training_step yielded no losses; yield (group name, loss) for each group"


def _check_stock_peft(task_class: type[Task], base: str, adapter_dir: Path, run_dir: Path) -> bool:
    """Stock peft gives the outputs lorakit gives; returns whether the base can
    be exported merged (MergedExport, or a Hugging Face model)."""
    import torch
    from peft import PeftModel

    from lorakit import runs
    from lorakit.lora import match_conv_geometry

    name = task_class.name
    with _step(name, "stock peft reload", "the base must load the same way every time (load_base, then "
               "prepare_base(base, None) repeating the run's change from self.options)"):
        task, loaded_base, model, _, _ = runs.open_adapter(run_dir)
        plain_task = task_class(task.options)
        plain_base = plain_task.load_base(base)
        plain_task.prepare_base(plain_base, None)
        # Stock peft plus the one fix its 0.21 release needs for dilated convolutions (no-op otherwise).
        plain = match_conv_geometry(PeftModel.from_pretrained(plain_base.model, str(adapter_dir)))
        plain.eval()
        with torch.inference_mode():
            ours, theirs = task.probe(loaded_base, model), task.probe(plain_base, plain)
    assert torch.allclose(ours.float(), theirs.float(), atol=1e-6), (
        f"{_where(name, 'stock peft reload')}: stock peft loads the adapter with other outputs than lorakit; "
        "keep probe() deterministic and the base the same on every load_base")
    return isinstance(task, MergedExport) or hasattr(loaded_base.model, "save_pretrained")


def _check_predict_cli(task_class: type[Task], run_dir: Path, predict_args: list[str]) -> list[dict[str, Any]]:
    """``lorakit predict TASK --adapter RUN ARGS`` through the real CLI: one
    JSON record per input."""
    from click.testing import CliRunner

    from lorakit.cli import cli

    name = task_class.name
    where = _where(name, PREDICT_STEP)
    assert "--adapter" not in predict_args, "predict_args must not hold --adapter: the kit passes the trained run"
    expected, out, _ = _predict_inputs(task_class, predict_args)
    assert expected, (f"{where}: predict_args {predict_args!r} give `lorakit predict` no inputs; give files, "
                      "--text, or the task's input flags")
    command = ["predict", name, "--adapter", str(run_dir), *predict_args]
    result = CliRunner().invoke(cli, command)
    shown = f"`lorakit {' '.join(command)}`"
    if result.exit_code != 0:
        problem = result.exception if result.exception and not isinstance(result.exception, SystemExit) else None
        detail = f"{type(problem).__name__}: {problem}" if problem else result.output.strip()[-1500:]
        raise AssertionError(f"{where}: {shown} failed (exit {result.exit_code}): {detail}. To fix: "
                             "predict(base, model, inputs) gets the merged model and the inputs, and returns one "
                             "dict per input") from problem
    text = result.stdout
    if out is not None and not out.lower().endswith(".wav"):
        path = Path(out)
        text = (path / "predictions.jsonl" if path.is_dir() else path).read_text(encoding="utf-8")
    records = []
    for line in filter(str.strip, text.splitlines()):
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            raise AssertionError(f"{where}: {shown} printed {line[:200]!r}, not a JSON record; predict must not "
                                 "print (use lorakit.api.console, which writes to stderr)") from None
    assert len(records) == expected and all(isinstance(r, dict) for r in records), (
        f"{where}: {shown} gave {len(records)} records for {expected} inputs; predict must return one dict per "
        "input, in order")
    audio = any("audio" in r for r in records)
    assert audio == bool(task_class.predicts_audio), (
        f"{where}: predict's records carry audio; set predicts_audio = True on the task, so `lorakit predict` "
        "asks for --out before it loads the base" if audio else
        f"{where}: predicts_audio is True but predict's records carry no 'audio'; leave predicts_audio False")
    return records


def _check_parts(task_class: type[Task], run_dir: Path, predict_args: list[str], tolerance: float = 1e-4) -> None:
    """Each input predicted part by part, the parts' audio joined with
    ``part_gap_seconds`` of silence, sounds as the input predicted whole."""
    import numpy as np
    import torch

    from lorakit import runs
    from lorakit.merge import merge

    name = task_class.name
    where = _where(name, PARTS_STEP)
    fix = ("input_parts(base, x) must cut x where predict(base, model, [x]) joins its pieces, and each part must "
           "be predicted as predict predicts that piece")
    inputs = _predict_inputs(task_class, predict_args)[2]
    with _step(name, PARTS_STEP, fix):
        task, base, model, _, _ = runs.open_adapter(run_dir)
        model = merge(model).eval()
        with torch.inference_mode():
            for given in inputs:
                parts = task.input_parts(base, given)
                assert parts, f"{where}: input_parts gave no parts for {given!r}; give at least the input itself"
                whole = task.predict(base, model, [given])[0]
                pieces = task.predict(base, model, parts)
                rate = int(whole["sample_rate"])
                gap = np.zeros(round(task.part_gap_seconds * rate), dtype=np.float32)
                joined = []
                for index, piece in enumerate(pieces):
                    assert int(piece["sample_rate"]) == rate, f"{where}: parts are spoken at another sample rate"
                    joined += [gap, piece["audio"]] if index else [piece["audio"]]
                joined_audio = np.concatenate(joined).astype(np.float32)
                expected = np.asarray(whole["audio"], dtype=np.float32).reshape(-1)
                assert joined_audio.shape == expected.shape, (
                    f"{where}: {given!r} in {len(parts)} parts joined makes {joined_audio.size} samples, predicted "
                    f"whole {expected.size}; {fix}")
                difference = float(np.abs(joined_audio - expected).max()) if expected.size else 0.0
                assert difference <= tolerance, (
                    f"{where}: {given!r} in parts differs from it whole by up to {difference:.2e}; {fix}")


def _predict_inputs(task_class: type[Task], predict_args: list[str]) -> tuple[int, str | None, list[Any]]:
    """How many inputs ``predict_args`` give ``predict``, parsed as the CLI
    parses them, the ``--out`` they name, and the inputs themselves."""
    from lorakit import runs
    from lorakit.cli import predict, split_predict_arguments
    from lorakit.config import RunConfig

    name = task_class.name
    with _step(name, PREDICT_STEP, "check predict_args: files, --text, input flags and task options"):
        context = predict.make_context("predict", [name, *predict_args])
        params = context.params
        inputs, options, input_flags = split_predict_arguments(name, [*params["inputs"], *context.args])
        given = [*inputs, *params["texts"]]
        task = runs.make_task(RunConfig(task=name, options=options))
        if isinstance(task, CommandLineInputs):
            given = task.prediction_inputs(given, input_flags)
    return len(given), params.get("out"), list(given)


def _check_resume(task_class: type[Task], config: Any, whole_adapter: Path, steps: int) -> None:
    import torch

    from lorakit import runs

    half = max(1, steps // 2)
    fix = "keep collate/loss free of hidden state and draw randomness from torch, numpy or random"
    with _step(task_class.name, RESUME_STEP, fix):
        runs.run(config("resumed"), stop_after=half, show_progress=False)
        resumed = runs.run(config("resumed"), resume=True, show_progress=False)
    a, b = _adapter_weights(whole_adapter), _adapter_weights(resumed.adapter_dir)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a), (
        f"{_where(task_class.name, RESUME_STEP)}: training resumed after {half} steps ended with other weights "
        f"than an uninterrupted run; {fix}")


def _check_merge(task_class: type[Task], run_dir: Path, out: Path, exportable: bool, tolerance: float = 1e-4) -> float:
    """The adapter merged into the base gives the outputs of the unmerged one;
    when the task can export merged models, the export is written too."""
    import torch

    from lorakit import runs
    from lorakit.merge import merge

    name = task_class.name
    fix = "probe() must be deterministic so that merged and unmerged outputs compare"
    if exportable:
        with _step(name, EXPORT_STEP, f"save_merged(base, model, path) writes the merged model into path; {fix}"):
            difference = runs.export_merged(run_dir, out, tolerance=tolerance)
        assert out.is_dir() and any(out.iterdir()), f"{_where(name, EXPORT_STEP)}: nothing was written into {out}"
        return difference
    with _step(name, "merge", fix):
        task, base, model, _, _ = runs.open_adapter(run_dir)
        with torch.inference_mode():
            before = task.probe(base, model).float()
            after = task.probe(base, merge(model)).float()
    difference = float((before - after).abs().max())
    assert difference <= tolerance * max(1.0, float(before.abs().max())), (
        f"{_where(name, 'merge')}: merging the adapter changes probe() outputs by {difference:.3g}; {fix}")
    return difference


def _adapter_weights(adapter_dir: Path) -> dict[str, Any]:
    from safetensors.torch import load_file

    return load_file(str(adapter_dir / "adapter_model.safetensors"))


def random_adapter(task_name: str, base_name: str, run_dir: str | Path, seed: int, scale: float = 0.05,
                   targets: Sequence[str] | str | None = None, r: int = 4) -> Path:
    """A run folder (``adapter/`` + ``report.json``) holding an adapter with
    random LoRA B, saved as runs save them: it changes the model's outputs
    without training, for tests and benchmarks of what uses adapters
    (serving, mixing, tooling). The same ``seed`` gives the same weights in
    any process. Its report's metrics are placeholders."""
    import copy
    import json

    import torch

    from lorakit.apply import load_base
    from lorakit.artifact import Manifest, save_adapter
    from lorakit.config import LoraSettings, RunConfig
    from lorakit.fingerprints import base_fingerprint
    from lorakit.lora import inject
    from lorakit.runs import make_task

    run_dir = Path(run_dir)
    task = make_task(RunConfig(task=task_name))
    base = load_base(task, base_name)
    printed = base_fingerprint(base, task.name)
    task.prepare_base(base, None)
    targets = targets or task.lora_targets
    with torch.random.fork_rng(devices=[]):  # LoRA A's initial values come from the global generator
        torch.manual_seed(seed)
        model = inject(copy.deepcopy(base.model), LoraSettings(r=r, alpha=2 * r), targets, [])
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "lora_B" in name:
                p.copy_(torch.randn(p.shape, generator=generator) * scale)
    metric = next(iter(task.metrics))
    report = {"test": {"examples": 4, "base": {metric: 0.5}, "adapter": {metric: 0.7}}}
    manifest = Manifest(task=task.name, base=base.name, base_fingerprint=printed, targets=targets, r=r, alpha=2 * r,
                        data={"examples": 4, "random": True}, metrics=report, options=dataclasses.asdict(task.options))
    save_adapter(model, run_dir / "adapter", manifest)
    (run_dir / "report.json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    return run_dir
