"""A tiny regression task used to test the core without a real model.

Its base is a two-layer MLP whose weights come from a seed; its data is a folder
with ``data.jsonl`` lines ``{"x": [4 numbers], "y": number}`` made by
``write_toy_data`` from a *shifted* copy of the base, so LoRA has a real,
learnable target and the held-out MSE must fall. Data whose ``y`` is a list
of k numbers makes ``prepare_base`` grow the base's head to k outputs (as a
classifier grows its head for new labels); the grown head trains fully.

``toy`` is a plain task with command-line inputs, samples and a merged
export; ``toy-pair`` is the same task trained with two optimizers (encoder
and head LoRA apart), with its own learning rate and betas for the head.
It is written against ``lorakit.api`` only, as a plugin would be.

Two environment variables, outside the run's config so that a --resume of
the same config does without them: ``TOY_SIGNAL_AT_CALL=N`` sends the process
the signal ``TOY_SIGNAL`` (SIGINT by default) at its Nth loss call (only on
rank ``TOY_SIGNAL_RANK`` when set), and ``TOY_SECONDS_PER_CALL`` slows every
loss call down.
"""

from __future__ import annotations

import json
import os
import signal
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

import torch
from torch import nn

from lorakit.api import (
    Base,
    BaseModelError,
    CommandLineInputs,
    ConfigError,
    Data,
    DataError,
    MergedExport,
    OptimizerGroup,
    SeveralOptimizers,
    Task,
    TaskOptions,
    WritesSamples,
    hookimpl,
    to_device,
    whole_number,
)

HIDDEN = 16


class ToyModel(nn.Module):
    def __init__(self, seed: int = 0):
        super().__init__()
        generator = torch.Generator().manual_seed(seed)
        self.encoder = nn.Linear(4, HIDDEN)
        self.head = nn.Linear(HIDDEN, 1)
        with torch.no_grad():
            for p in self.parameters():
                p.copy_(torch.randn(p.shape, generator=generator) * 0.5)

    def forward(self, x):
        return self.head(torch.tanh(self.encoder(x))).squeeze(-1)

    def grow_head(self, outputs: int) -> None:
        """``outputs`` head rows: the first as trained, the new ones from a
        fixed seed, so the same options always grow the same head."""
        old = self.head
        if old.out_features == outputs:
            return
        generator = torch.Generator().manual_seed(outputs)
        head = nn.Linear(HIDDEN, outputs)
        with torch.no_grad():
            head.weight.copy_(torch.randn(head.weight.shape, generator=generator) * 0.5)
            head.bias.zero_()
            head.weight[:1] = old.weight
            head.bias[:1] = old.bias
        self.head = head


def target_model() -> ToyModel:
    """The function the toy data is drawn from: the demo base plus a rank-1 shift."""
    model = ToyModel(0)
    generator = torch.Generator().manual_seed(123)
    with torch.no_grad():
        u = torch.randn(HIDDEN, 1, generator=generator)
        v = torch.randn(1, 4, generator=generator)
        model.encoder.weight += 0.8 * u @ v
    return model


def write_toy_data(folder: Path, n: int = 240, seed: int = 0, outputs: int = 1) -> Path:
    """``n`` examples; with ``outputs`` > 1 each ``y`` is a list whose extra
    entries are new targets the base's one-output head cannot give."""
    folder.mkdir(parents=True, exist_ok=True)
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 4, generator=generator)
    with torch.no_grad():
        y = target_model()(x)
    columns = [y] + [torch.sin(k * x.sum(-1)) for k in range(1, outputs)]
    with open(folder / "data.jsonl", "w") as handle:
        for i, xi in enumerate(x.tolist()):
            yi = [float(c[i]) for c in columns]
            handle.write(json.dumps({"x": xi, "y": yi if outputs > 1 else yi[0]}) + "\n")
    return folder


#: Evaluations in this process (for ``rank_skew``).
EVALUATIONS = [0]


@dataclass
class ToyOptions(TaskOptions):
    #: Make the loss NaN from this loss call on (to test the non-finite guard).
    nan_at_call: Optional[int] = None
    #: With nan_at_call: only on the process of this rank (None: every process).
    nan_rank: Optional[int] = None
    #: Raise KeyboardInterrupt at this loss call, once per process (to test Ctrl-C).
    interrupt_at_call: Optional[int] = None
    #: Raise KeyboardInterrupt in this call of evaluate, once per process (Ctrl-C while validating).
    interrupt_at_evaluation: Optional[int] = None
    #: Outputs of the head; prepare_base sets it from the data (a list y grows the head).
    outputs: int = 1
    #: Round predictions to two decimals (a switch, to test `lorakit predict` flag parsing).
    rounded: bool = False
    #: Add this x the process's rank x the number of evaluations so far to the
    #: metric: ranks whose validations disagree (to test that every process
    #: follows the main process's decisions).
    rank_skew: float = 0.0
    #: Also measure the mean absolute error (an optional metric, as caption's clip_score is with --clip).
    report_mae: bool = False

    def __post_init__(self):
        if self.nan_at_call is not None and self.nan_at_call < 1:
            raise ConfigError(f"options.nan_at_call = {self.nan_at_call} must be >= 1")
        self.outputs = whole_number("outputs", self.outputs, 1, 64)


INTERRUPTED: list[bool] = []


class ToyTask(Task, CommandLineInputs, WritesSamples, MergedExport):
    name = "toy"
    description = "Regression with a tiny MLP (tests only)."
    options_class = ToyOptions
    metrics = {"mse": "min"}
    optional_metrics = {"mae": "min"}  # with --report_mae
    lora_targets = ["encoder", "head"]
    aliases = {"points": "data.path"}
    input_flags = ("point",)
    inputs_help = "points as comma-separated numbers (1,2,3,4) or --point"

    def __init__(self, options=None):
        super().__init__(options)
        self.calls = 0  # counts loss calls, for the NaN and Ctrl-C options only
        self.evaluations = 0  # counts evaluate calls, for interrupt_at_evaluation

    def load_base(self, name: str) -> Base:
        seeds = {"demo": 0, "demo-other": 1}
        if name in seeds:
            return Base(model=ToyModel(seeds[name]), name=name)
        path = Path(name)
        if (path / "model.safetensors").is_file():
            from safetensors.torch import load_file

            model = ToyModel(0)
            model.load_state_dict(load_file(str(path / "model.safetensors")))
            return Base(model=model, name=name)
        raise BaseModelError(f"unknown toy base {name!r}: use demo, demo-other or a folder with model.safetensors")

    def load_data(self, path: Path, base: Base, role: str = "data") -> Data:
        file = Path(path) / "data.jsonl"
        if not file.is_file():
            raise DataError(f"{file} is missing")
        examples = []
        for number, line in enumerate(file.read_text().splitlines(), 1):
            try:
                record = json.loads(line)
                y = record["y"]
                examples.append((tuple(float(v) for v in record["x"]),
                                 tuple(float(v) for v in y) if isinstance(y, list) else float(y)))
            except (ValueError, KeyError, TypeError) as exc:
                raise DataError(f"{file}, line {number}: {exc}") from None
        return Data(examples, {"examples": len(examples), "outputs": _outputs(examples)})

    def prepare_base(self, base: Base, data: Data | None) -> list[str]:
        # The head grows for data with more outputs; an opened adapter finds
        # the width in its options. A grown head is new, so it trains fully.
        if data is not None:
            self.options.outputs = _outputs(data.examples)
        if self.options.outputs == 1:
            return list(self.modules_to_save)
        base.model.grow_head(self.options.outputs)
        return ["head"]

    def collate(self, base: Base, examples) -> dict[str, Any]:
        return {"x": torch.tensor([e[0] for e in examples]), "y": torch.tensor([e[1] for e in examples])}

    def loss(self, base: Base, model, batch) -> Any:
        self.calls += 1
        if self.calls == self.options.interrupt_at_call and not INTERRUPTED:
            INTERRUPTED.append(True)
            raise KeyboardInterrupt
        rank = int(os.environ.get("RANK", "0"))
        if self.calls == int(os.environ.get("TOY_SIGNAL_AT_CALL", "0")) and os.environ.get("TOY_SIGNAL_RANK") in (None, str(rank)):
            os.kill(os.getpid(), signal.Signals[os.environ.get("TOY_SIGNAL", "SIGINT")])  # as a launcher passes Ctrl-C on
        time.sleep(float(os.environ.get("TOY_SECONDS_PER_CALL", "0")))
        loss = torch.nn.functional.mse_loss(model(batch["x"]), batch["y"])
        on_this_rank = self.options.nan_rank in (None, rank)
        if self.options.nan_at_call is not None and self.calls >= self.options.nan_at_call and on_this_rank:
            loss = loss * float("nan")
        return loss

    def evaluate(self, base: Base, model, examples) -> dict[str, float]:
        self.evaluations += 1
        if self.evaluations == self.options.interrupt_at_evaluation and not INTERRUPTED:
            INTERRUPTED.append(True)
            raise KeyboardInterrupt
        batch = to_device(self.collate(base, examples), model)
        EVALUATIONS[0] += 1
        skew = self.options.rank_skew * int(os.environ.get("RANK", "0")) * EVALUATIONS[0]
        predicted = model(batch["x"])
        scores = {"mse": float(torch.nn.functional.mse_loss(predicted, batch["y"])) + skew}
        if self.options.report_mae:
            scores["mae"] = float(torch.nn.functional.l1_loss(predicted, batch["y"]))
        return scores

    def predict(self, base: Base, model, inputs):
        x = to_device(torch.tensor([[float(v) for v in text.split(",")] for text in inputs]), model)
        ys = model(x).tolist()
        if self.options.rounded:
            ys = [[round(v, 2) for v in y] if isinstance(y, list) else round(y, 2) for y in ys]
        return [{"input": text, "y": y} for text, y in zip(inputs, ys)]

    def prediction_inputs(self, inputs, flags):
        points = flags.get("point", [])
        return [*inputs, *(points if isinstance(points, list) else [points])]

    def probe(self, base: Base, model) -> Any:
        x = torch.linspace(-1, 1, 32).reshape(8, 4)
        return model(to_device(x, model))

    def write_samples(self, base: Base, model, examples, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        batch = to_device(self.collate(base, examples[:4]), model)
        rows = zip(batch["y"].tolist(), model(batch["x"]).tolist())
        (folder / "outputs.jsonl").write_text("".join(json.dumps({"y": y, "output": out}) + "\n" for y, out in rows))

    def save_merged(self, base: Base, model, path: Path) -> None:
        from safetensors.torch import save_file

        save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(path / "model.safetensors"))


def _outputs(examples) -> int:
    widths = {len(e[1]) if isinstance(e[1], tuple) else 1 for e in examples}
    if len(widths) > 1:
        raise DataError(f"every y must have the same number of values; found {sorted(widths)}")
    return widths.pop() if widths else 1


@dataclass
class ToyPairOptions(ToyOptions):
    #: Learning rate of the head's optimizer; None = train.lr.
    head_lr: Optional[float] = None
    #: AdamW betas of the head's optimizer, e.g. [0.8, 0.99]; None = (0.9, 0.999).
    head_betas: Optional[list[float]] = None


class ToyPairTask(ToyTask, SeveralOptimizers):
    """The toy task with encoder and head LoRA trained by two optimizers."""

    name = "toy-pair"
    description = "The toy regression with two optimizers (tests only)."
    options_class = ToyPairOptions

    def optimizer_groups(self, base: Base, model) -> dict[str, OptimizerGroup]:
        encoder, head = [], []
        for name, p in model.named_parameters():
            if p.requires_grad:
                (encoder if ".encoder." in name else head).append(p)
        betas = tuple(self.options.head_betas) if self.options.head_betas else None
        return {"encoder": OptimizerGroup(encoder), "head": OptimizerGroup(head, lr=self.options.head_lr, betas=betas)}

    def training_step(self, base: Base, model, batch):
        yield "encoder", self.loss(base, model, batch)
        yield "head", self.loss(base, model, batch)


@hookimpl
def register_tasks(register):
    register(ToyTask)
    register(ToyPairTask)
