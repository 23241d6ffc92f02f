"""Run configuration: dataclasses that validate themselves and name the bad field."""

from __future__ import annotations

import dataclasses
import math
import os
import re
import types
import typing
from dataclasses import dataclass, field
from typing import Any, Union

from lorakit.errors import ConfigError, did_you_mean

PRECISIONS = ("auto", "no", "bf16", "fp16")
BASE_DTYPES = ("fp32", "bf16", "fp16", "4bit")
#: Characters that make a --lora.targets string a regex; without any it is suffixes ("qkv,fc1").
REGEX_SIGNS = "\\.^$*+?{}[]|()"


def _require(condition: bool, name: str, value: Any, rule: str) -> None:
    if not condition:
        raise ConfigError(f"{name} = {value!r} is invalid: {rule}")


@dataclass
class LoraSettings:
    """Where LoRA goes and how big it is."""

    #: LoRA rank: the inner size of each low-rank update B @ A.
    r: int = 8
    #: LoRA scale numerator: the update is scaled by alpha / r (alpha / sqrt(r) with rslora).
    alpha: float = 16.0
    #: Dropout on the LoRA branch's input during training; 0 = none.
    dropout: float = 0.0
    #: Module name suffixes (a list, or "a,b") or one regex on full names; None = the task's default.
    targets: Union[list[str], str, None] = None
    #: Rank-stabilised scaling (alpha / sqrt(r)), steadier when r is large.
    rslora: bool = False
    #: DoRA: learn each adapted weight's magnitude apart from its direction.
    dora: bool = False
    #: Modules trained fully and saved with the adapter; None = the task's default.
    modules_to_save: Union[list[str], None] = None

    def __post_init__(self):
        _require(1 <= self.r <= 4096, "lora.r", self.r, "must be a positive integer up to 4096 (typical: 4-64)")
        _require(self.alpha > 0, "lora.alpha", self.alpha, "must be positive")
        _require(0 <= self.dropout < 1, "lora.dropout", self.dropout, "must be in [0, 1)")
        if isinstance(self.targets, str) and not set(self.targets) & set(REGEX_SIGNS):
            # "qkv" or "qkv,fc1" means suffixes: as a regex (matched against whole names) it would name a
            # top-level module only, or one with a comma in its name: never what was meant.
            self.targets = [t.strip() for t in self.targets.split(",") if t.strip()] or self.targets
        if isinstance(self.targets, list):
            _require(bool(self.targets) and all(isinstance(t, str) and t for t in self.targets),
                     "lora.targets", self.targets, "must be a non-empty list of module names or one regex string")
        elif isinstance(self.targets, str):
            _require(bool(self.targets.strip()), "lora.targets", self.targets, "must not be empty")


@dataclass
class TrainSettings:
    """The training loop's knobs."""

    #: Passes over the training examples (each also mixes in replayed retain examples when replay > 0).
    epochs: int = 10
    #: Stop after this many optimizer steps (overrides epochs when set).
    max_steps: Union[int, None] = None
    #: Examples per batch on each process.
    batch_size: int = 16
    #: Batches whose gradients add up to one optimizer step.
    grad_accum: int = 1
    #: Peak AdamW learning rate, reached after warmup and decayed to 0 by a cosine.
    lr: float = 1e-3
    #: AdamW's decoupled weight decay; 0 = none.
    weight_decay: float = 0.0
    #: Fraction of the optimizer steps over which the learning rate rises linearly to lr.
    warmup_ratio: float = 0.05
    #: Clip the gradient norm (per optimizer group) to this; None = no clipping.
    max_grad_norm: Union[float, None] = 1.0
    #: Seeds LoRA's initialisation, dropout, the data splits and the data order.
    seed: int = 0
    #: Validate (and maybe keep the best checkpoint) every N optimizer steps; 0 = once per epoch.
    eval_every: int = 0
    #: The validation number that picks the best weights and drives patience:
    #: "val_loss" (lower is better) or one of the task's metrics (its own direction).
    metric: str = "val_loss"
    #: Stop after this many validations without improvement; None = never stop early.
    patience: Union[int, None] = None
    #: Write a resumable checkpoint every N optimizer steps (and always at the end); 0 = at validations only.
    save_every: int = 0
    #: Log the training loss every N optimizer steps (log.jsonl, tb/).
    log_every: int = 10
    #: "auto" = bf16 autocast on a GPU with native bf16, fp16 + gradient scaler on older GPUs,
    #: full precision on a CPU (bf16 there when base_dtype is bf16); or no / bf16 / fp16.
    precision: str = "auto"
    #: DataLoader worker processes for collate; None = 2 on a CUDA GPU, 0 (collate in the training process) on a CPU.
    num_workers: Union[int, None] = None
    #: Recompute activations in the backward pass instead of keeping them: less memory, about a third more compute.
    gradient_checkpointing: bool = False
    #: Redraw LoRA dropout in the backward pass instead of keeping a dropped copy of every adapted
    #: layer's input (lorakit/lora_dropout.py): BLIP-base at dropout 0.05 keeps 28% fewer activations,
    #: for a few percent more compute on a CPU; false = peft's own dropout. Same results either way.
    recompute_dropout: bool = True
    #: A LoRA layer fed by a norm or an activation keeps that module's input (kept anyway) instead of
    #: its output, recomputed in the backward pass (lorakit/lora_inputs.py): MusicGen-small keeps 30%
    #: fewer activations, BLIP-base 33%, at the same speed; false = peft's own. Same results either way.
    recompute_inputs: bool = True
    #: On a CPU, dropout keeps its mask for the backward pass as 1-byte booleans, as torch does on a GPU,
    #: not as torch's CPU float mask (lorakit/dropout_masks.py): MusicGen-small keeps 14% fewer
    #: activations; false = torch's own. Same results either way.
    bool_dropout_masks: bool = True
    #: CPU threads torch computes with; None = the cores this process may use minus those other work keeps
    #: busy (see lorakit/threads.py), or LORAKIT_THREADS / OMP_NUM_THREADS when set.
    threads: Union[int, None] = None

    def __post_init__(self):
        _require(1 <= self.epochs <= 1_000_000, "train.epochs", self.epochs, "must be between 1 and 1,000,000")
        _require(self.max_steps is None or 1 <= self.max_steps <= 100_000_000, "train.max_steps", self.max_steps,
                 "must be between 1 and 100,000,000")
        _require(1 <= self.batch_size <= 65_536, "train.batch_size", self.batch_size,
                 "must be between 1 and 65,536 (per process; raise train.grad_accum for larger effective batches)")
        _require(1 <= self.grad_accum <= 65_536, "train.grad_accum", self.grad_accum, "must be between 1 and 65,536")
        _require(self.lr > 0, "train.lr", self.lr, "must be positive")
        _require(self.weight_decay >= 0, "train.weight_decay", self.weight_decay, "must be >= 0")
        _require(0 <= self.warmup_ratio < 1, "train.warmup_ratio", self.warmup_ratio, "must be in [0, 1)")
        _require(self.max_grad_norm is None or self.max_grad_norm > 0, "train.max_grad_norm",
                 self.max_grad_norm, "must be positive, or null to disable clipping")
        _require(self.eval_every >= 0, "train.eval_every", self.eval_every, "must be >= 0")
        _require(self.patience is None or self.patience >= 1, "train.patience", self.patience, "must be >= 1")
        _require(self.save_every >= 0, "train.save_every", self.save_every, "must be >= 0")
        _require(self.log_every >= 1, "train.log_every", self.log_every, "must be >= 1")
        _require(self.precision in PRECISIONS, "train.precision", self.precision, f"must be one of {', '.join(PRECISIONS)}")
        _require(self.threads is None or 1 <= self.threads <= 1024, "train.threads", self.threads,
                 "must be a whole number of threads from 1, or none for lorakit's choice")
        _require(self.num_workers is None or 0 <= self.num_workers <= 256, "train.num_workers", self.num_workers,
                 "must be between 0 and 256")


@dataclass
class DataSettings:
    """Where the examples come from and how they are split."""

    #: The training data folder (or file) the task reads.
    path: Union[str, None] = None
    #: An explicit held-out set; when absent, test_fraction of `path` is held out.
    eval_path: Union[str, None] = None
    #: Fraction of the data (of `path`) that validates during training: picks the best weights, drives patience.
    val_fraction: float = 0.1
    #: Fraction of the data held out for the base-vs-adapter report; ignored with eval_path.
    test_fraction: float = 0.15
    #: Data of the base's old domain: evaluated before/after to measure forgetting
    #: (all of it when replay is 0; else the half that is not replayed).
    retain: Union[str, None] = None
    #: Fraction of each epoch's training examples drawn from the retain set (replay); 0 = no replay.
    replay: float = 0.0
    #: Use at most this many training examples (after splitting); None = all.
    max_examples: Union[int, None] = None
    #: Seed of the train/validation/held-out split; None = train.seed. Set it
    #: to compare training seeds on one held-out set.
    split_seed: Union[int, None] = None

    def __post_init__(self):
        _require(0 <= self.val_fraction < 0.5, "data.val_fraction", self.val_fraction, "must be in [0, 0.5)")
        _require(0 <= self.test_fraction < 0.5, "data.test_fraction", self.test_fraction, "must be in [0, 0.5)")
        _require(0 <= self.replay < 1, "data.replay", self.replay, "must be in [0, 1)")
        _require(self.replay == 0 or self.retain, "data.replay", self.replay, "needs data.retain (--retain DIR)")
        _require(self.max_examples is None or self.max_examples >= 1, "data.max_examples", self.max_examples, "must be >= 1")
        _require(self.split_seed is None or self.split_seed >= 0, "data.split_seed", self.split_seed, "must be >= 0")


@dataclass
class RunConfig:
    """Everything one run needs. Built from a recipe plus command-line flags."""

    task: str = ""
    base: str = "demo"
    #: How the frozen base weights are held: fp32, bf16 / fp16 (half the memory), or 4bit (QLoRA, CUDA only).
    #: LoRA weights and their optimizer states stay fp32 whatever this is.
    base_dtype: str = "fp32"
    output: Union[str, None] = None
    data: DataSettings = field(default_factory=DataSettings)
    lora: LoraSettings = field(default_factory=LoraSettings)
    train: TrainSettings = field(default_factory=TrainSettings)
    #: Task-specific options, checked against the task's options class.
    options: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self):
        _require(isinstance(self.task, str) and bool(self.task), "task", self.task, "name a task (see `lorakit tasks`)")
        _require(isinstance(self.base, str) and bool(self.base), "base", self.base, "name a base: demo, a folder or a hub id")
        _require(self.base_dtype in BASE_DTYPES, "base_dtype", self.base_dtype, f"must be one of {', '.join(BASE_DTYPES)}")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def with_absolute_data_paths(self) -> "RunConfig":
        """This config with relative data paths made absolute against the
        working folder, as a run reads them: its config.yaml then names the
        same data for ``lorakit evaluate RUN`` or ``--resume`` from any folder."""
        data = self.data
        paths = {key: os.path.abspath(os.path.expanduser(getattr(data, key))) for key in DATA_PATHS
                 if isinstance(getattr(data, key), str)}
        return dataclasses.replace(self, data=dataclasses.replace(data, **paths))


class _SwitchedOn:
    """The value of a flag written without one (``--dora``): true for a
    true/false setting, a mistake for any other (``--output`` at the end of a
    command line is a forgotten folder, not a folder named "True")."""

    def __repr__(self) -> str:
        return "no value"

    def __deepcopy__(self, memo: dict) -> "_SwitchedOn":  # one marker, compared by identity
        return self


SWITCHED_ON = _SwitchedOn()


def switch_value(name: str, value: Any, is_switch: bool) -> Any:
    """``value`` itself, or True for a bare flag of a true/false setting;
    ConfigError for a bare flag that needs a value."""
    if value is not SWITCHED_ON:
        return value
    if is_switch:
        return True
    raise ConfigError(f"--{name} was given without a value: write --{name} VALUE")


SECTIONS = {"data": DataSettings, "lora": LoraSettings, "train": TrainSettings}
#: Fields of the data section that name files or folders.
DATA_PATHS = ("path", "eval_path", "retain")


def build(cls: type, values: dict[str, Any], prefix: str = "") -> Any:
    """Build dataclass ``cls`` from a dict, checking names and types.

    An unknown key is rejected with the list of valid ones; values are coerced
    to the field's type where that is unambiguous (YAML/flags give strings).
    """
    if not isinstance(values, dict):
        raise ConfigError(f"{prefix.rstrip('.') or 'config'} must be a mapping, got {values!r}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    hints = typing.get_type_hints(cls)
    kwargs = {}
    for key, value in values.items():
        if key not in fields:
            raise ConfigError(f"unknown field {prefix}{key}{_did_you_mean(cls, key, prefix)}; valid fields: "
                              f"{', '.join(prefix + n for n in fields)}")
        hint = hints[key]
        if dataclasses.is_dataclass(hint):
            kwargs[key] = build(hint, value or {}, f"{prefix}{key}.")
        else:
            kwargs[key] = coerce(value, hint, f"{prefix}{key}")
    try:
        return cls(**kwargs)
    except (TypeError, ValueError) as exc:  # a plugin's __post_init__ may check a value with ValueError
        raise ConfigError(f"{prefix.rstrip('.') or 'config'}: {exc}") from None


def _did_you_mean(cls: type, key: str, prefix: str) -> str:
    """`` (did you mean train.max_steps?)`` for a misspelt field, or one
    written a level too high (``max_steps:`` beside ``train:``)."""
    hints = typing.get_type_hints(cls)
    nested = [f"{name}.{key}" for name, hint in hints.items()
              if dataclasses.is_dataclass(hint) and key in {f.name for f in dataclasses.fields(hint)}]
    if nested:
        return f" (did you mean {prefix}{nested[0]}?)"
    return did_you_mean(key, [f.name for f in dataclasses.fields(cls)], prefix)


def coerce(value: Any, hint: Any, name: str) -> Any:
    """Convert ``value`` to type ``hint`` (int, float, bool, str, list, Optional...)."""
    origin = typing.get_origin(hint)
    options = typing.get_args(hint) if origin in (Union, types.UnionType) else (hint,)
    value = switch_value(name, value, bool in options)
    if origin in (Union, types.UnionType):
        if value is None or (isinstance(value, str) and value.strip().lower() in ("", "none", "null")
                             and type(None) in options):
            if type(None) in options:
                return None
        errors = []
        # Prefer an exact type match (a str for `list[str] | str`) before coercing.
        for option in options:
            if option is not type(None) and _is_instance(value, option):
                return coerce(value, option, name) if option is float else value  # a float is checked finite
        for option in options:
            if option is type(None):
                continue
            try:
                return coerce(value, option, name)
            except ConfigError as exc:
                errors.append(str(exc))
        raise ConfigError(errors[0] if errors else f"{name} = {value!r} is invalid")
    if origin is list:
        (item,) = typing.get_args(hint) or (Any,)
        if isinstance(value, str):
            value = [v.strip() for v in value.split(",") if v.strip()]
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{name} = {value!r} is invalid: expected a list")
        return [coerce(v, item, name) for v in value]
    if origin is dict or hint is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{name} = {value!r} is invalid: expected a mapping")
        return dict(value)
    if hint is Any:
        return value
    if hint is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "yes", "1", "on", "false", "no", "0", "off"):
            return value.lower() in ("true", "yes", "1", "on")
        raise ConfigError(f"{name} = {value!r} is invalid: expected true or false")
    if hint is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, str) and re.fullmatch(r"[+-]?\d+", value.strip()):
            return int(value)
        raise ConfigError(f"{name} = {value!r} is invalid: expected an integer")
    if hint is float:
        number = None
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            number = float(value)
        elif isinstance(value, str):
            try:
                number = float(value)
            except ValueError:
                pass
        if number is not None and math.isfinite(number):  # lr inf passed "positive" and failed at step 2
            return number
        raise ConfigError(f"{name} = {value!r} is invalid: expected a finite number")
    if hint is str:
        if isinstance(value, (dict, list)):
            raise ConfigError(f"{name} = {value!r} is invalid: expected text")
        return "" if value is None else str(value)  # a blank YAML value (trigger:) is no text, not "None"
    return value


def _is_instance(value: Any, hint: Any) -> bool:
    origin = typing.get_origin(hint)
    if origin is list:
        return isinstance(value, list)
    if isinstance(hint, type):
        return isinstance(value, hint) and not (hint in (int, float) and isinstance(value, bool))
    return False
