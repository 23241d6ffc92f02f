"""A tiny regression task used to test the core without a real model.

Its base is a two-layer MLP whose weights come from a seed; its data is a folder
with ``data.jsonl`` lines ``{"x": [4 numbers], "y": number}`` made by
``write_toy_data`` from a *shifted* copy of the base, so LoRA has a real,
learnable target and the held-out MSE must fall.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

import torch
from torch import nn

import lorakit
from lorakit.errors import BaseModelError, ConfigError, DataError
from lorakit.task import Base, Task, TaskOptions


class ToyModel(nn.Module):
    def __init__(self, seed: int = 0):
        super().__init__()
        generator = torch.Generator().manual_seed(seed)
        self.encoder = nn.Linear(4, 16)
        self.head = nn.Linear(16, 1)
        with torch.no_grad():
            for p in self.parameters():
                p.copy_(torch.randn(p.shape, generator=generator) * 0.5)

    def forward(self, x):
        return self.head(torch.tanh(self.encoder(x))).squeeze(-1)


def target_model() -> ToyModel:
    """The function the toy data is drawn from: the demo base plus a rank-1 shift."""
    model = ToyModel(0)
    generator = torch.Generator().manual_seed(123)
    with torch.no_grad():
        u = torch.randn(16, 1, generator=generator)
        v = torch.randn(1, 4, generator=generator)
        model.encoder.weight += 0.8 * u @ v
    return model


def write_toy_data(folder: Path, n: int = 240, seed: int = 0) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 4, generator=generator)
    with torch.no_grad():
        y = target_model()(x)
    with open(folder / "data.jsonl", "w") as handle:
        for xi, yi in zip(x.tolist(), y.tolist()):
            handle.write(json.dumps({"x": xi, "y": yi}) + "\n")
    return folder


@dataclass
class ToyOptions(TaskOptions):
    #: Make the loss NaN from this loss call on (to test the non-finite guard).
    nan_at_call: Optional[int] = None
    #: Raise KeyboardInterrupt at this loss call, once per process (to test Ctrl-C).
    interrupt_at_call: Optional[int] = None
    #: Train encoder and head LoRA with two optimizers (to test multi-optimizer steps).
    two_optimizers: bool = False

    def __post_init__(self):
        if self.nan_at_call is not None and self.nan_at_call < 1:
            raise ConfigError(f"options.nan_at_call = {self.nan_at_call} must be >= 1")


INTERRUPTED: list[bool] = []


class ToyTask(Task):
    name = "toy"
    description = "Regression with a tiny MLP (tests only)."
    options_class = ToyOptions
    metrics = {"mse": "min"}
    default_targets = ["encoder", "head"]
    input_flags = ("point",)

    def __init__(self, options=None):
        super().__init__(options)
        self.calls = 0

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

    def load_data(self, path: Path, base=None, role: str = "data") -> list[Any]:
        file = Path(path) / "data.jsonl"
        if not file.is_file():
            raise DataError(f"{file} is missing")
        examples = []
        for number, line in enumerate(file.read_text().splitlines(), 1):
            try:
                record = json.loads(line)
                examples.append((tuple(float(v) for v in record["x"]), float(record["y"])))
            except (ValueError, KeyError, TypeError) as exc:
                raise DataError(f"{file}, line {number}: {exc}") from None
        return examples

    def collate(self, base: Base, examples) -> dict[str, Any]:
        return {"x": torch.tensor([e[0] for e in examples]), "y": torch.tensor([e[1] for e in examples])}

    def loss(self, base: Base, model, batch) -> Any:
        self.calls += 1
        if self.calls == self.options.interrupt_at_call and not INTERRUPTED:
            INTERRUPTED.append(True)
            raise KeyboardInterrupt
        loss = torch.nn.functional.mse_loss(model(batch["x"]), batch["y"])
        if self.options.nan_at_call is not None and self.calls >= self.options.nan_at_call:
            loss = loss * float("nan")
        return loss

    def optimizer_groups(self, base, model):
        if not self.options.two_optimizers:
            return super().optimizer_groups(base, model)
        groups = {"encoder": [], "head": []}
        for name, p in model.named_parameters():
            if p.requires_grad:
                groups["encoder" if ".encoder." in name else "head"].append(p)
        return groups

    def training_step(self, base, model, batch):
        if not self.options.two_optimizers:
            yield from super().training_step(base, model, batch)
            return
        yield "encoder", self.loss(base, model, batch)
        yield "head", self.loss(base, model, batch)

    def evaluate(self, base: Base, model, examples) -> dict[str, float]:
        batch = self.collate(base, examples)
        with torch.no_grad():
            return {"mse": float(torch.nn.functional.mse_loss(model(batch["x"]), batch["y"]))}

    def predict(self, base: Base, model, inputs):
        x = torch.tensor([[float(v) for v in text.split(",")] for text in inputs])
        return [{"input": text, "y": float(y)} for text, y in zip(inputs, model(x))]

    def prediction_inputs(self, inputs, flags):
        points = flags.get("point", [])
        return [*inputs, *(points if isinstance(points, list) else [points])]

    def probe(self, base: Base, model) -> Any:
        x = torch.linspace(-1, 1, 32).reshape(8, 4)
        return model(x)

    def save_merged(self, base: Base, model, path: Path) -> None:
        from safetensors.torch import save_file

        save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(path / "model.safetensors"))


@lorakit.hookimpl
def register_tasks(register):
    register(ToyTask)
