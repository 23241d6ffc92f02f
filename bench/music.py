"""Music style speed: generation tokens/s and training steps/s.

    python bench/music.py [--steps 30] [--rounds 5] [--seconds 8]

1. Generation: codec tokens per second (frames x codebooks x prompts, codec
   decoding included) of the base and of a merged adapter, alternating on the
   same prompts and seed. Goal: merged / base >= 0.98 (merging costs nothing
   at inference).
2. Training steps per second of the lorakit loop (its defaults, gradient
   clipping and the schedule included) vs a minimal hand-written loop on the
   same model, batches and seed: MusicGen's loss, backward, AdamW.
   Goal: lorakit / hand >= 0.95.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "bench"))

from alternate import alternate, cpu_only, rotated, trainer_batches  # noqa: E402

PROMPTS = ["fast chiptune melody in a minor with drums", "calm piano arpeggio in c major"]


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(REPO / "samples" / "music" / "chiptune"))
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--threads", type=int, default=2)
    return parser.parse_args()


def fresh(task, seed: int = 0):
    """The demo base with fresh LoRA on the task's targets, seeded."""
    from accelerate.utils import set_seed

    from lorakit.config import LoraSettings
    from lorakit.lora import inject

    base = task.load_base("demo")
    set_seed(seed)
    return base, inject(base.model, LoraSettings(r=16, alpha=32), task.lora_targets, ())


def tokens_per_second(task, base, model, seconds: float) -> float:
    from lorakit_music.generation import Sampling, generate

    sampling = Sampling(seconds=seconds, seed=0)
    start = time.perf_counter()
    generate(model, base.processor, PROMPTS, sampling)
    elapsed = time.perf_counter() - start
    frames = round(seconds * base.model.config.audio_encoder.frame_rate)
    return frames * base.model.decoder.num_codebooks * len(PROMPTS) / elapsed


def generation(task, adapter_dir: Path, seconds: float, rounds: int) -> None:
    import torch

    from lorakit import runs
    from lorakit.merge import merge

    _, merged_base, peft_model, _, _ = runs.open_adapter(adapter_dir)
    merged = merge(peft_model).eval()
    base = task.load_base("demo")
    results = {"base": [], "merged": []}
    with torch.inference_mode():
        tokens_per_second(task, base, base.model, seconds / 4)  # warm-up of each
        tokens_per_second(task, merged_base, merged, seconds / 4)
        for round_index in range(rounds):
            for name in rotated(["base", "merged"], round_index):
                if name == "base":
                    results["base"].append(tokens_per_second(task, base, base.model, seconds))
                else:
                    results["merged"].append(tokens_per_second(task, merged_base, merged, seconds))
    median = {k: statistics.median(v) for k, v in results.items()}
    print(f"generation: base {median['base']:.0f} tokens/s, merged adapter {median['merged']:.0f} tokens/s; "
          f"ratio merged / base {median['merged'] / median['base']:.3f} (goal >= 0.98)")


def hand_loop(task, base, model, examples, steps: int, batch_size: int) -> float:
    import torch

    parameters = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(parameters, lr=1e-3)
    batches = trainer_batches(examples, batch_size, steps)  # the same batches as lorakit's loop
    model.train()
    start = time.perf_counter()
    for step in range(steps):
        batch = task.collate(base, batches[step])
        task.loss(base, model, batch).backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
    return steps / (time.perf_counter() - start)


def lorakit_loop(task, base, model, examples, steps: int, batch_size: int, accelerator) -> float:
    from lorakit.config import TrainSettings
    from lorakit.trainer import Trainer

    settings = TrainSettings(max_steps=steps, batch_size=batch_size, lr=1e-3)
    trainer = Trainer(task, base, model, examples, [], settings, accelerator, show_progress=False)
    start = time.perf_counter()
    trainer.fit()
    return steps / (time.perf_counter() - start)


def main() -> None:
    args = parse_args()
    import os

    cpu_only()

    import torch

    torch.set_num_threads(args.threads)
    from lorakit import runs
    from lorakit.device import describe, make_accelerator
    from lorakit.plugins import get_host

    with tempfile.TemporaryDirectory() as folder:
        os.environ.setdefault("LORAKIT_CACHE", f"{folder}/cache")
        task = get_host().task("music-style")()
        accelerator = make_accelerator("auto")
        base, _ = fresh(task)
        examples = task.load_data(Path(args.data), base).examples
        print(f"device: {describe(accelerator)}; {len(examples)} windows; batch 8; "
              f"{args.steps} steps x {args.rounds} rounds")
        h, o = alternate(lambda: hand_loop(task, *fresh(task), examples, args.steps, 8),
                         lambda: lorakit_loop(task, *fresh(task), examples, args.steps, 8, accelerator),
                         args.rounds, "steps/s", 2)
        print(f"training: hand-written {h:.2f} steps/s, lorakit {o:.2f} steps/s; ratio lorakit / hand {o / h:.3f} "
              "(goal >= 0.95)")
        config = runs.load_config("music-style", ["--data", args.data, "--base", "demo",
                                                  "--output", f"{folder}/run", "--train.max_steps", "5"])
        outcome = runs.run(config, show_progress=False, evaluate=False)
        generation(task, outcome.adapter_dir, args.seconds, args.rounds)


if __name__ == "__main__":
    main()
