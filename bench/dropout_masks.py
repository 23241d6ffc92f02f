"""Dropout keeping boolean masks (``lorakit.dropout_masks``) vs torch's CPU
float masks, on a real-size MusicGen-small, whose decoder drops out at 0.1.

    python bench/dropout_masks.py [--batch 4] [--steps 3] [--rounds 3] [--cache DIR]

Two training models are built the same way a run builds them
(``runs.training_model``, same seed, ``music-style``); one computes its loss
with boolean dropout masks, as lorakit's loop does on a CPU, the other with
torch's own dropout (``--train.bool_dropout_masks false``). For each: the
bytes of tensors kept for the backward pass at the end of the forward pass
and the peak of a whole step (the planner's ``LiveTensors``), then training
samples/s, alternating over rounds so machine noise hits both. A first step
checks both give the same loss and gradients. Prints ratios; goals: kept
bytes boolean / torch <= 0.9, speed >= 0.95.
"""

from __future__ import annotations

import sys
from pathlib import Path
from types import SimpleNamespace

sys.path.insert(0, str(Path(__file__).resolve().parent))

import real_size  # noqa: E402
from lora_dropout import compare, parse_args  # noqa: E402

GOALS = {"kept": 0.9, "speed": 0.95}


class _WithMasks:
    """A task whose loss is computed as the trainer's forward pass is."""

    def __init__(self, task, enabled: bool):
        self.task, self.enabled = task, enabled

    def loss(self, base, model, batch):
        import torch

        from lorakit.dropout_masks import bool_dropout_masks

        with bool_dropout_masks(torch.device("cpu"), self.enabled):
            return self.task.loss(base, model, batch)


def main() -> None:
    args = parse_args()
    import torch

    from lorakit import runs
    from lorakit.planning import largest_example

    folder = real_size.ensure("music", args.cache)
    config = runs.load_config("music-style", ["--base", str(folder), "--data", str(real_size.MODELS["music"][2])])
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, device cpu, fp32; LoRA r {config.lora.r}, "
          f"batch {args.batch}")
    built = {name: runs.training_model(runs.make_task(config), config) for name in ("torch", "boolean")}
    first = built["torch"]
    batch = first.task.collate(first.base, [largest_example(first.task, first.base, first.splits.train)] * args.batch)
    models = {name: SimpleNamespace(task=_WithMasks(made.task, name == "boolean"), base=made.base, model=made.model)
              for name, made in built.items()}
    compare(models, batch, args.batch, args.steps, args.rounds, GOALS)


if __name__ == "__main__":
    main()
