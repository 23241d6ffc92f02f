"""Predicting a run's peak training memory before it runs (``lorakit plan``).

Three parts, as a run holds them:

* weights: the frozen base, in the dtype ``base_dtype`` gives it;
* LoRA + optimizer states: every trained parameter (LoRA, modules trained
  fully, a GAN discriminator) with its gradient and AdamW's two states,
  4 + 4 + 8 bytes each (all fp32, whatever the base);
* activations of one training step (forward and backward), with the batch.

The model is built exactly as a run builds it (``runs.training_model``), so
the first two are counted from the real tensors. Activations are measured:
real training steps (the task's collate, then ``loss`` or ``training_step``
and backward, as the trainer runs them) at two small batch sizes on the CPU,
counting the bytes of tensors alive between the start of the forward pass and
the end of the backward pass. They grow linearly with the batch, so two sizes
give the fixed part and the cost per example. The batches repeat the largest
training example, so that padding never makes a real batch bigger.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import re
import weakref
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, Sequence

from lorakit.config import RunConfig
from lorakit.errors import ConfigError

#: Bytes per trained parameter: fp32 weight, fp32 gradient, AdamW's two fp32 states.
TRAINED_BYTES = 4 + 4 + 8
#: The batch sizes activations are measured at.
PROBE_SIZES = (1, 2)
#: Training examples looked at to find the largest one.
EXAMPLES_SEARCHED = 256
#: NF4 weights: half a byte each, plus one 8-bit absmax per block of 64 (double quantization).
FOUR_BIT_BYTES = 0.5 + 1 / 64

_UNITS = {"": None, "b": 1, "k": 1e3, "kb": 1e3, "kib": 2**10, "m": 1e6, "mb": 1e6, "mib": 2**20,
          "g": 1e9, "gb": 1e9, "gib": 2**30, "t": 1e12, "tb": 1e12, "tib": 2**40}


def parse_memory(text: str) -> int:
    """Bytes of a size such as ``24GB`` (10^9), ``16GiB`` (2^30) or ``800MB``."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*", str(text))
    unit = _UNITS.get(match.group(2).lower(), 0) if match else 0
    if not match or not unit:
        raise ConfigError(f"--memory {text!r} is not a memory size; write a number and a unit, "
                          "e.g. 24GB, 16GiB or 800MB")
    if float(match.group(1)) <= 0:
        raise ConfigError(f"--memory {text!r}: the budget must be more than nothing, e.g. 24GB")
    return int(float(match.group(1)) * unit)


def format_bytes(count: float) -> str:
    for unit, size in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if abs(count) >= size:
            return f"{count / size:.2f} {unit}"
    return f"{int(count)} B"


# -- counting tensors ---------------------------------------------------------------------


def _storage_key(tensor: Any) -> int:
    return tensor.untyped_storage()._cdata


def _tensors(value: Any) -> list[Any]:
    import torch
    from torch.utils._pytree import tree_flatten

    return [t for t in tree_flatten(value)[0] if isinstance(t, torch.Tensor) and t.device.type != "meta"]


def tensor_bytes(values: Any) -> int:
    """Bytes of the distinct storages of the tensors in ``values`` (nested
    dicts, lists...; views and tied weights count once)."""
    storages = {_storage_key(t): t.untyped_storage().nbytes() for t in _tensors(values)}
    return sum(storages.values())


class LiveTensors:
    """Counts the bytes of tensors created inside it while they are alive,
    and their peak: every storage an operation returns that none of its
    inputs holds (so views and in-place results are not new) counts from
    then until it is freed."""

    def __init__(self):
        self.live = self.peak = 0
        self._sizes: dict[int, int] = {}
        self._refs: dict[int, Any] = {}
        self._mode: Any = None

    def __enter__(self) -> "LiveTensors":
        from torch.utils._python_dispatch import TorchDispatchMode

        meter = self

        class Mode(TorchDispatchMode):
            def __torch_dispatch__(self, func, types, args=(), kwargs=None):
                out = func(*args, **(kwargs or {}))
                meter._note(out, {_storage_key(t) for t in _tensors((args, kwargs))})
                return out

        self._mode = Mode()
        self._mode.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._mode.__exit__(*exc)

    def _note(self, out: Any, inputs: set[int]) -> None:
        for tensor in _tensors(out):
            storage = tensor.untyped_storage()
            key = storage._cdata
            if key in inputs or key in self._sizes:
                continue
            self._sizes[key] = storage.nbytes()
            # A storage's Python object lives exactly as long as the storage.
            self._refs[key] = weakref.ref(storage, lambda _, key=key: self._free(key))
            self.live += self._sizes[key]
            self.peak = max(self.peak, self.live)

    def _free(self, key: int) -> None:
        self.live -= self._sizes.pop(key, 0)
        self._refs.pop(key, None)


# -- the parts ------------------------------------------------------------------------------


@dataclass
class Activations:
    """Activation bytes of a step: ``fixed + per_example * batch``."""

    fixed: float
    per_example: float

    def at(self, batch: int) -> float:
        return max(0.0, self.fixed + self.per_example * batch)


@dataclass
class Estimate:
    """Predicted peak of one way of training, by part."""

    weights: int
    trained: int
    activations: Activations

    def total(self, batch: int) -> float:
        return self.weights + self.trained + self.activations.at(batch)

    def largest_batch(self, budget: int) -> int:
        """The largest batch size that fits ``budget`` (0: not even one example)."""
        room = budget - self.weights - self.trained - self.activations.fixed
        if self.activations.per_example <= 0:
            return 0 if room < 0 else 1 << 20
        return max(0, int(room // self.activations.per_example))


def weight_bytes(model: Any) -> int:
    """Bytes of the frozen parameters and the buffers."""
    frozen = [p for p in model.parameters() if not p.requires_grad]
    return tensor_bytes([frozen, list(model.buffers())])


def trained_parameters(model: Any) -> int:
    return sum({_storage_key(p): p.numel() for p in model.parameters() if p.requires_grad}.values())


def four_bit_weight_bytes(model: Any) -> int:
    """Frozen bytes as ``base_dtype = 4bit`` holds them: frozen Linear weights
    in NF4 (``memory.hold_base``), every other frozen tensor in fp32, as
    peft's k-bit preparation casts it."""
    import torch

    quantized = {_storage_key(m.weight) for name, m in model.named_modules()
                 if type(m) is torch.nn.Linear and not m.weight.requires_grad
                 and ".original_module" not in name and ".modules_to_save" not in name}
    total = 0.0
    for p in {_storage_key(p): p for p in model.parameters() if not p.requires_grad}.values():
        total += p.numel() * (FOUR_BIT_BYTES if _storage_key(p) in quantized else 4)
    # Buffers stay in the compute dtype (bf16) the quantized model was cast to.
    buffers = sum(b.numel() * (2 if b.is_floating_point() else b.element_size()) for b in model.buffers())
    return int(total + buffers)


# -- measuring a step ----------------------------------------------------------------------


@dataclass
class Stepper:
    """Runs a run's training step on a model, as the trainer does."""

    task: Any
    base: Any
    model: Any
    example: Any
    autocast: str = "no"
    groups: dict[str, list[Any]] = field(default_factory=dict)
    #: Dropout keeps boolean masks, as the trainer's does on a CPU and torch's on a GPU.
    bool_dropout_masks: bool = True

    def activations(self, sizes: Sequence[int] = PROBE_SIZES) -> Activations:
        """Fixed and per-example activation bytes from steps at two batch sizes."""
        self.step(1)  # the first step makes the task's caches; they are not activations
        small, large = sizes
        low, high = self.step(small), self.step(large)
        per_example = (high - low) / (large - small)
        # A negative intercept is the noise of small sizes: none is the safer guess.
        return Activations(fixed=max(0.0, low - per_example * small), per_example=per_example)

    def step(self, batch_size: int) -> int:
        """Peak bytes of one step's batch and activations."""
        batch = self.task.collate(self.base, [self.example] * batch_size)
        self._gradients_in_place()
        self.model.train()
        with LiveTensors() as meter:
            self._forward_backward(batch)
        for params in self.groups.values():
            for p in params:
                p.grad = None
        return tensor_bytes(batch) + meter.peak

    def _forward_backward(self, batch: Any) -> None:
        """The batch's losses and backward passes, as the trainer runs them
        (a loss in autocast, its backward outside); every activation is
        freed when this returns."""
        import torch

        from lorakit.step_losses import step_losses

        for group, loss in step_losses(self.task, self.base, self.model, batch, self._forward_settings):
            torch.autograd.backward(loss, inputs=self.groups[group] if len(self.groups) > 1 else None)

    @contextlib.contextmanager
    def _forward_settings(self) -> Iterator[None]:
        """The trainer's, as measured here: the planned autocast, and boolean dropout masks."""
        import torch

        from lorakit.dropout_masks import bool_dropout_masks

        with self._autocast(), bool_dropout_masks(torch.device("cpu"), self.bool_dropout_masks):
            yield

    def _gradients_in_place(self) -> None:
        """Gradients of the trained parameters are counted with them (in
        ``trained``): allocated here, outside the meter, the backward pass
        adds into them as in any accumulation step."""
        import torch

        for params in self.groups.values():
            for p in params:
                p.grad = torch.zeros_like(p)

    def _autocast(self) -> Any:
        import torch

        if self.autocast == "no":
            return contextlib.nullcontext()
        return torch.autocast("cpu", dtype=torch.bfloat16)


def largest_example(task: Any, base: Any, examples: Sequence[Any]) -> Any:
    """The example whose batch of one holds the most bytes (longest text,
    clip or window) among the first ``EXAMPLES_SEARCHED``."""
    candidates = list(examples)[:EXAMPLES_SEARCHED]
    return max(candidates, key=lambda e: tensor_bytes(task.collate(base, [e])))


def optimizer_groups(task: Any, base: Any, model: Any) -> dict[str, list[Any]]:
    from lorakit.capabilities import SeveralOptimizers

    if isinstance(task, SeveralOptimizers):
        groups = {name: group.params for name, group in task.optimizer_groups(base, model).items()}
    else:
        groups = {"main": [p for p in model.parameters() if p.requires_grad]}
    return {name: params for name, params in groups.items() if params}


# -- the plan ---------------------------------------------------------------------------------


@dataclass
class Option:
    """A way to train that fits the budget: the flags that choose it and its estimate."""

    flags: list[str]
    estimate: Estimate
    batch_size: int
    grad_accum: int


@dataclass
class Plan:
    """A run's predicted peak training memory, what it was predicted for, and what fits the budget."""

    task: str
    base: str
    device: str
    precision: str
    base_dtype: str
    gradient_checkpointing: bool
    batch_size: int
    grad_accum: int
    #: Training examples in an epoch (replayed ones included).
    epoch_examples: int
    frozen_parameters: int
    trained_parameters: int
    estimate: Estimate
    budget: int | None = None
    advice: str = ""
    option: Option | None = None
    #: Trained parameters per optimizer group, for a task with several (a GAN's
    #: discriminator trains fully beside the LoRA weights); empty with one.
    trained_groups: dict[str, int] = field(default_factory=dict)

    @property
    def batch(self) -> int:
        """The batch the run trains on: the configured one, or the whole
        epoch when it has fewer examples."""
        return min(self.batch_size, self.epoch_examples)

    @property
    def peak(self) -> float:
        return self.estimate.total(self.batch)

    def to_dict(self) -> dict[str, Any]:
        e = self.estimate
        out = {key: getattr(self, key) for key in ("task", "base", "device", "precision", "base_dtype",
                                                   "gradient_checkpointing", "batch_size", "grad_accum",
                                                   "frozen_parameters", "trained_parameters", "trained_groups",
                                                   "epoch_examples", "batch", "budget", "advice")}
        out["bytes"] = {"weights": e.weights, "lora_and_optimizer": e.trained,
                        "activations": round(e.activations.at(self.batch)), "total": round(self.peak)}
        out["activations_per_example"] = round(e.activations.per_example)
        out["activations_fixed"] = round(e.activations.fixed)
        out["largest_batch"] = e.largest_batch(self.budget) if self.budget else None
        out["suggested_flags"] = self.option.flags if self.option else []
        return out


def target_device(device: str | None) -> str:
    import torch

    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    if device not in ("cpu", "cuda"):
        raise ConfigError(f"--device {device!r} is invalid: the run's device is cpu or cuda")
    return device


def measured_autocast(base_dtype: str, precision: str, device: str) -> str:
    """The mixed precision the run would use on ``device`` ("no" or "bf16"; an
    fp16 run is measured in bf16, which has the same sizes). Refuses what the
    run would refuse."""
    from lorakit.memory import autocast_for

    resolved = autocast_for(base_dtype, precision, cuda=device == "cuda")
    if resolved == "auto":
        return "bf16" if device == "cuda" else "no"
    return "no" if resolved == "no" else "bf16"


def plan(config: RunConfig, budget: int | None = None, device: str | None = None) -> Plan:
    """The predicted peak training memory of ``config`` on ``device`` (this
    machine's by default), measured on the CPU, and what fits ``budget``."""
    from lorakit.capabilities import SeveralOptimizers
    from lorakit.run_data import require_data_paths
    from lorakit.runs import make_task, training_model

    task = make_task(config)
    if not config.data.path:
        raise ConfigError(f"lorakit plan measures real training steps: pass --data DIR (the folder of "
                          f"{task.name} examples)")
    require_data_paths(task, config)  # before torch loads: a typo is said at once
    device = target_device(device)
    if device == "cpu" and config.base_dtype in ("fp16", "4bit"):
        raise ConfigError(f"base_dtype = {config.base_dtype!r} needs a CUDA GPU; to plan a GPU run on this machine "
                          "add --device cuda")
    autocast = measured_autocast(config.base_dtype, config.train.precision, device)
    # A 4-bit or fp16 base is measured as a bf16 one on the CPU: the same activations.
    measured = dataclasses.replace(config, base_dtype="bf16" if config.base_dtype in ("fp16", "4bit") else config.base_dtype)
    made = training_model(task, measured, measuring=True)
    model = made.model.to("cpu")
    if isinstance(task, SeveralOptimizers):
        task.prepare_training(made.base, model)
    example = largest_example(task, made.base, made.splits.train + made.splits.replay_pool)
    groups = optimizer_groups(task, made.base, model)
    # A GPU's dropout keeps boolean masks whatever the setting; a CPU's, with it.
    stepper = Stepper(task, made.base, model, example, autocast, groups,
                      bool_dropout_masks=config.train.bool_dropout_masks or device == "cuda")
    weights = four_bit_weight_bytes(model) if config.base_dtype == "4bit" else weight_bytes(model)
    trained = trained_parameters(model)
    estimate = Estimate(weights, trained * TRAINED_BYTES, stepper.activations())
    by_group = {name: sum(p.numel() for p in params) for name, params in groups.items()} if len(groups) > 1 else {}
    result = Plan(task.name, config.base, device, autocast, config.base_dtype, config.train.gradient_checkpointing,
                  config.train.batch_size, config.train.grad_accum, _epoch_examples(config, made.splits),
                  _frozen(model), trained, estimate, budget, trained_groups=by_group)
    if budget is not None:
        result.option, result.advice = advise(result, lambda: alternatives(stepper, config, device))
    return result


def _epoch_examples(config: RunConfig, splits: Any) -> int:
    from lorakit.batches import EpochOrder

    order = EpochOrder(splits.train, config.train.batch_size, config.train.seed, replay_pool=splits.replay_pool,
                       replay=config.data.replay)
    return len(order.epoch_examples(0))


def _frozen(model: Any) -> int:
    return sum({_storage_key(p): p.numel() for p in model.parameters() if not p.requires_grad}.values())


# -- what fits -------------------------------------------------------------------------------


def advise(result: Plan, others: Callable[[], Iterator[tuple[list[str], Estimate]]]) -> tuple[Option | None, str]:
    """What to run within the budget: the configured batch, a smaller one
    with more accumulation, or (when not even one example fits) gradient
    checkpointing or a reduced base, whichever fits first."""
    budget, estimate = result.budget, result.estimate
    wanted = result.batch * result.grad_accum
    largest = estimate.largest_batch(budget)
    if largest >= result.batch:
        whole = (f", more than the {result.epoch_examples} training examples of an epoch"
                 if largest >= result.epoch_examples else "")
        return None, f"fits in {format_bytes(budget)}: batch sizes up to {largest}{whole}"
    need = f"batch {result.batch} needs {format_bytes(result.peak)}, more than {format_bytes(budget)}"
    if largest >= 1:
        option = _option([], estimate, largest, wanted)
        return option, f"{need}; {_describe(option, wanted)}"
    tried = []
    for flags, other in others():
        fits = other.largest_batch(budget)
        if fits >= 1:
            option = _option(flags, other, min(fits, result.batch), wanted)
            return option, f"{need}, and batch 1 does not fit either; {_describe(option, wanted)}"
        tried.append(f"{' '.join(flags)} ({format_bytes(other.total(1))})")
    return None, (f"{need}; batch 1 needs {format_bytes(estimate.total(1))}"
                  + (f", and does not fit with {' or '.join(tried)} either" if tried else ""))


def _option(flags: list[str], estimate: Estimate, batch: int, wanted: int) -> Option:
    accum = math.ceil(wanted / batch)
    return Option(flags + [f"--train.batch_size {batch}", f"--train.grad_accum {accum}"], estimate, batch, accum)


def _describe(option: Option, wanted: int) -> str:
    return (f"{' '.join(option.flags)} fits ({format_bytes(option.estimate.total(option.batch_size))}) and keeps "
            f"an effective batch of {option.batch_size * option.grad_accum} (configured {wanted})")


def alternatives(stepper: Stepper, config: RunConfig, device: str) -> Iterator[tuple[list[str], Estimate]]:
    """Estimates of the ways to save memory the run does not use yet, cheapest
    in compute first: gradient checkpointing, then a bf16 base with it, and
    for a GPU a 4-bit base. Measured one after the other on the same model,
    changed in place, as far as the caller reads."""
    from lorakit.memory import HALF, hold_base, trainable_to_fp32

    model = stepper.model
    trained = trained_parameters(model) * TRAINED_BYTES
    flags = []
    if not config.train.gradient_checkpointing and _checkpointing(stepper, config.task):
        flags = ["--train.gradient_checkpointing true"]
        yield flags, Estimate(weight_bytes(model), trained, stepper.activations())
    if config.base_dtype in HALF or config.base_dtype == "4bit":
        return
    four_bit = four_bit_weight_bytes(model)
    hold_base(model, "bf16")
    trainable_to_fp32(model)
    stepper.autocast = "bf16"
    bf16 = Estimate(weight_bytes(model), trained, stepper.activations())
    yield ["--base_dtype bf16", *flags], bf16
    if device == "cuda":
        yield ["--base_dtype 4bit", *flags], Estimate(four_bit, trained, bf16.activations)


def _checkpointing(stepper: Stepper, task_name: str) -> bool:
    """Turn gradient checkpointing on the model on; False when it has none."""
    from lorakit.memory import enable_gradient_checkpointing

    inner = stepper.model.get_base_model()
    try:
        enable_gradient_checkpointing(inner, task_name)
    except ConfigError:
        return False
    return True
