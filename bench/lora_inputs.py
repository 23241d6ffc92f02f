"""LoRA layers keeping a norm's or activation's input (``lorakit.lora_inputs``)
vs peft's own (keeping their output), on real-size BLIP-base and MusicGen-small.

    python bench/lora_inputs.py [--only caption,music] [--batch 4] [--steps 3] [--rounds 3] [--cache DIR]

For each model, two training models are built the way a run builds them
(``runs.training_model``, same seed, the shipped recipe: BLIP-base with
``caption-blip-base``, MusicGen with ``music-style``), one with
``train.recompute_inputs`` off. For each: the bytes of tensors kept for the
backward pass at the end of the forward pass and the peak of a whole step
(the planner's ``LiveTensors``), then training samples/s, alternating over
rounds so machine noise hits both. A first step checks both give the same
loss and gradients. Prints ratios; goals: kept bytes recomputed / peft <= 0.8,
speed >= 0.95.
"""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import real_size  # noqa: E402
from lora_dropout import compare, parse_args  # noqa: E402

GOALS = {"kept": 0.8, "speed": 0.95}
#: Model -> the recipe or task it trains with and its extra flags.
RECIPES = {"caption": ("caption-blip-base", real_size.CAPTION_LORA_ONLY), "music": ("music-style", [])}


def main() -> None:
    args = parse_args(__doc__, ",".join(RECIPES))
    from alternate import cpu_only  # bench/, this script's folder

    cpu_only()
    import torch

    from lorakit import runs
    from lorakit.device import describe, make_accelerator
    from lorakit.planning import largest_example

    for key in args.only.split(","):
        recipe, extra = RECIPES[key]
        folder = real_size.ensure(key, args.cache)
        config = runs.load_config(recipe, ["--base", str(folder), "--data", str(real_size.MODELS[key][2]), *extra])
        print(f"\n{key}: torch {torch.__version__}, {torch.get_num_threads()} threads, device "
              f"{describe(make_accelerator(config.train.precision, config.base_dtype))}; LoRA r {config.lora.r}, "
              f"dropout {config.lora.dropout}, batch {args.batch}")
        models = {}
        for name, recompute in (("peft", False), ("recomputed", True)):
            chosen = dataclasses.replace(config, train=dataclasses.replace(config.train, recompute_inputs=recompute))
            models[name] = runs.training_model(runs.make_task(chosen), chosen)
        made = models["peft"]
        batch = made.task.collate(made.base, [largest_example(made.task, made.base, made.splits.train)] * args.batch)
        compare(models, batch, args.batch, args.steps, args.rounds, GOALS)
        del models, made, batch


if __name__ == "__main__":
    main()
