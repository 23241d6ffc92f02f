"""LoRA dropout recomputed in the backward pass vs peft's own dropout, on a
real-size BLIP-base with the shipped recipe (r 16, dropout 0.05).

    python bench/lora_dropout.py [--batch 4] [--steps 3] [--rounds 3] [--cache DIR]

Two training models are built the same way a run builds them
(``runs.training_model``, same seed): one as lorakit trains, one with peft's
own dropout (``train.recompute_dropout`` off). For each: the bytes of tensors
kept for the backward pass at the end of the forward pass, and the peak of
tensors made during a whole step (both counted by the planner's
``LiveTensors``), then training samples/s (forward, backward, AdamW), the two
alternating over rounds so machine noise hits both. A first step checks both give equal losses and gradients.
Prints ratios; goals: kept bytes recomputed / peft <= 0.75, speed >= 0.95.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import real_size  # noqa: E402

GOALS = {"kept": 0.75, "speed": 0.95}


def parse_args(description: str | None = None, models: str | None = None) -> argparse.Namespace:
    """The options of a two-model comparison (this bench's, or another's
    ``description``); with ``models`` (comma-separated), ``--only`` picks among them."""
    parser = argparse.ArgumentParser(description=description or __doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cache", type=Path, default=Path.home() / ".cache" / "lorakit-bench",
                        help="where the real-size model folders are built (once)")
    if models:
        parser.add_argument("--only", default=models, help=f"comma-separated subset of: {models.replace(',', ', ')}")
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--steps", type=int, default=3, help="optimizer steps per timed round")
    parser.add_argument("--rounds", type=int, default=3)
    return parser.parse_args()


def build(config, recompute: bool):
    """A run's training model, with the dropout lorakit recomputes or peft's own."""
    import dataclasses

    from lorakit import runs

    # Off in both: kept inputs are bench/lora_inputs.py's comparison, not this one's.
    train = dataclasses.replace(config.train, recompute_dropout=recompute, recompute_inputs=False)
    config = dataclasses.replace(config, train=train)
    return runs.training_model(runs.make_task(config), config)


def step(made, batch, optimizer=None):
    """One training step; returns (loss, bytes kept at the end of the forward pass, peak bytes)."""
    from lorakit.planning import LiveTensors

    made.model.train()
    with LiveTensors() as meter:
        loss = made.task.loss(made.base, made.model, batch)
        kept = meter.live
        loss.backward()
    if optimizer is not None:
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
    return loss.detach(), kept, meter.peak


def samples_per_second(made, batch, optimizer, steps: int, size: int) -> float:
    made.model.train()
    started = time.perf_counter()
    for _ in range(steps):
        made.task.loss(made.base, made.model, batch).backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
    return steps * size / (time.perf_counter() - started)


def compare(models: dict, batch, size: int, steps: int, rounds: int, goals: dict) -> None:
    """Print, for two training models ({name: made}, baseline first) on the
    same batch of ``size`` examples: one step's losses and largest gradient
    difference, the bytes kept for backward and the step's peak, and samples/s
    alternating over rounds; each as a ratio second / first against ``goals``
    ("kept", "speed")."""
    import torch

    from lorakit.planning import format_bytes

    measured = {}
    for name, made in models.items():
        torch.manual_seed(1)
        loss, kept, peak = step(made, batch)
        grads = {n: p.grad.clone() for n, p in made.model.named_parameters() if p.requires_grad}
        made.model.zero_grad(set_to_none=True)
        measured[name] = (loss, kept, peak, grads)
    (loss_a, kept_a, peak_a, grads_a), (loss_b, kept_b, peak_b, grads_b) = measured.values()
    worst = max((grads_a[n] - grads_b[n]).abs().max().item() for n in grads_a)
    print(f"same step: losses {loss_a.item():.6f} / {loss_b.item():.6f}, largest gradient difference {worst:.2e}")

    first, second = models
    optimizers = {name: torch.optim.AdamW([p for p in made.model.parameters() if p.requires_grad], lr=1e-5)
                  for name, made in models.items()}
    speeds = {name: [] for name in models}
    for name, made in models.items():  # warm-up
        samples_per_second(made, batch, optimizers[name], 1, size)
    for index in range(rounds):
        for name in ((first, second) if index % 2 == 0 else (second, first)):
            speeds[name].append(samples_per_second(models[name], batch, optimizers[name], steps, size))
    speed_a, speed_b = (statistics.median(speeds[name]) for name in models)

    print(f"kept for backward: {first} {format_bytes(kept_a)}, {second} {format_bytes(kept_b)}, "
          f"ratio {kept_b / kept_a:.3f} (goal <= {goals['kept']})")
    print(f"peak of a step:    {first} {format_bytes(peak_a)}, {second} {format_bytes(peak_b)}, "
          f"ratio {peak_b / peak_a:.3f}")
    print(f"samples/s:         {first} {speed_a:.3f}, {second} {speed_b:.3f}, ratio {speed_b / speed_a:.3f} "
          f"(goal >= {goals['speed']}); rounds " + "; ".join(
              f"{name} " + ", ".join(f"{v:.3f}" for v in values) for name, values in speeds.items()))


def main() -> None:
    args = parse_args()
    from alternate import cpu_only  # bench/, this script's folder

    cpu_only()
    import torch

    from lorakit.device import describe, make_accelerator
    from lorakit.planning import largest_example
    from lorakit.runs import load_config

    folder = real_size.ensure("caption", args.cache)
    config = load_config("caption-blip-base", ["--base", str(folder), "--data", str(real_size.MODELS["caption"][2]),
                                               *real_size.CAPTION_LORA_ONLY])
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, device "
          f"{describe(make_accelerator(config.train.precision, config.base_dtype))}; LoRA r {config.lora.r}, "
          f"dropout {config.lora.dropout}, batch {args.batch}")
    models = {"peft": build(config, recompute=False), "recomputed": build(config, recompute=True)}
    example = largest_example(models["peft"].task, models["peft"].base, models["peft"].splits.train)
    batch = models["peft"].task.collate(models["peft"].base, [example] * args.batch)

    compare(models, batch, args.batch, args.steps, args.rounds, GOALS)


if __name__ == "__main__":
    main()
