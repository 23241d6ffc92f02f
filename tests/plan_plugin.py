"""A task whose training memory is big enough to measure (tests of ``lorakit plan``).

Its base is a frozen token embedding (20 MB) and a stack of gated blocks
whose activations grow with the batch (about 15 MB per example), so the
predicted parts are far above the few tens of MB a Python process's own
bookkeeping moves; it has gradient checkpointing, as Hugging Face models do. Data is a folder with ``seeds.txt``, one integer per line;
each seed makes one sequence of tokens and its target in ``collate``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from lorakit.api import Base, BaseModelError, Data, DataError, Task, hookimpl

VOCAB, WIDTH, LENGTH, BLOCKS = 20_000, 256, 512, 8


class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.proj = nn.Linear(WIDTH, WIDTH)

    def forward(self, x):
        return x + torch.tanh(self.proj(x)) * torch.sigmoid(x)


class WideModel(nn.Module):
    #: Gradient checkpointing as Hugging Face models switch it on: block inputs kept, the rest recomputed.
    supports_gradient_checkpointing = True

    def __init__(self):
        super().__init__()
        self.checkpointing: dict | None = None
        generator = torch.Generator().manual_seed(0)
        self.embed = nn.Embedding(VOCAB, WIDTH)
        self.blocks = nn.ModuleList(Block() for _ in range(BLOCKS))
        self.head = nn.Linear(WIDTH, 1)
        with torch.no_grad():
            for p in self.parameters():
                p.copy_(torch.randn(p.shape, generator=generator) * 0.05)

    def gradient_checkpointing_enable(self, gradient_checkpointing_kwargs=None):
        self.checkpointing = dict(gradient_checkpointing_kwargs or {})

    def forward(self, tokens):
        from torch.utils.checkpoint import checkpoint

        x = self.embed(tokens)
        for block in self.blocks:
            x = checkpoint(block, x, **self.checkpointing) if self.checkpointing is not None and self.training else block(x)
        return self.head(x).mean(dim=(1, 2))


def write_data(folder: Path, n: int = 40) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "seeds.txt").write_text("".join(f"{i}\n" for i in range(n)))
    return folder


class WideTask(Task):
    name = "wide"
    description = "Regression over long token sequences (tests of lorakit plan)."
    metrics = {"mse": "min"}
    lora_targets = ["proj"]
    modules_to_save = ["head"]

    def load_base(self, name: str) -> Base:
        if name != "demo":
            raise BaseModelError(f"unknown wide base {name!r}: use demo")
        return Base(model=WideModel(), name=name)

    def load_data(self, path: Path, base: Base, role: str = "data") -> Data:
        file = Path(path) / "seeds.txt"
        if not file.is_file():
            raise DataError(f"{file} is missing")
        return Data([int(line) for line in file.read_text().split()])

    def collate(self, base: Base, examples) -> dict[str, Any]:
        rows = [torch.Generator().manual_seed(seed) for seed in examples]
        tokens = torch.stack([torch.randint(0, VOCAB, (LENGTH,), generator=g) for g in rows])
        return {"tokens": tokens, "y": (tokens.float().mean(dim=1) / VOCAB) - 0.5}

    def loss(self, base: Base, model, batch) -> Any:
        return torch.nn.functional.mse_loss(model(batch["tokens"]).float(), batch["y"])

    def evaluate(self, base: Base, model, examples) -> dict[str, float]:
        batch = self.collate(base, examples)
        return {"mse": float(self.loss(base, model, batch))}

    def predict(self, base: Base, model, inputs):
        return [{"input": text} for text in inputs]

    def probe(self, base: Base, model) -> Any:
        return model(torch.arange(LENGTH).reshape(1, LENGTH))


@hookimpl
def register_tasks(register):
    register(WideTask)
