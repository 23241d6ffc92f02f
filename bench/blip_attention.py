"""BLIP's fused attention (``lorakit_blip.attention``) vs transformers' eager
attention, on a real-size BLIP-base with the shipped recipe.

    python bench/blip_attention.py [--batch 4] [--steps 3] [--rounds 3] [--cache DIR]

Two training models are built the way a run builds them
(``runs.training_model``, same seed); in one the attention layers are given
back their stock eager classes. For each: the bytes of tensors kept for the
backward pass at the end of the forward pass and the peak of a whole step
(the planner's ``LiveTensors``), then training samples/s, alternating over
rounds so machine noise hits both. A first step checks both give the same
loss and gradients. Prints ratios; goals: kept bytes fused / eager <= 0.85,
speed >= 1.0.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import real_size  # noqa: E402
from lora_dropout import compare, parse_args  # noqa: E402

GOALS = {"kept": 0.85, "speed": 1.0}


def main() -> None:
    args = parse_args(__doc__)
    import torch

    from lorakit import runs
    from lorakit.planning import largest_example
    from lorakit_blip.attention import unfuse_attention

    folder = real_size.ensure("caption", args.cache)
    config = runs.load_config("caption-blip-base", ["--base", str(folder),
                                                    "--data", str(real_size.MODELS["caption"][2]),
                                                    *real_size.CAPTION_LORA_ONLY,
                                                    # as measured before kept inputs (bench/lora_inputs.py)
                                                    "--train.recompute_inputs", "false"])
    models = {"eager": runs.training_model(runs.make_task(config), config),
              "fused": runs.training_model(runs.make_task(config), config)}
    layers = unfuse_attention(models["eager"].model)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, CPU fp32; BLIP-base captioning, "
          f"{layers} attention layers, LoRA r {config.lora.r}, batch {args.batch}")
    example = largest_example(models["eager"].task, models["eager"].base, models["eager"].splits.train)
    batch = models["eager"].task.collate(models["eager"].base, [example] * args.batch)

    compare(models, batch, args.batch, args.steps, args.rounds, GOALS)


if __name__ == "__main__":
    main()
