"""Training samples/s of the lorakit loop vs a minimal hand-written torch + peft loop.

    python bench/train_overhead.py [--task caption] [--data samples/caption/catalog] [--steps 40]

Both loops train the same base with the same LoRA, batches (lorakit's epoch
order), seed and learning rate, one after the other in this process, alternating, so machine noise hits
both. The hand-written loop is the least one can write: collate, forward,
backward, AdamW step. The lorakit loop adds what it always does (clipping, the
schedule, logging, NaN checks, accelerate). Prints the ratio; the goal is >= 0.95.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from alternate import alternate, trainer_batches  # noqa: E402


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", default="caption")
    parser.add_argument("--base", default="demo")
    parser.add_argument("--data", default="samples/caption/catalog")
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    return parser.parse_args()


def fresh_model(task, base_name: str, seed: int):
    """A newly loaded base with newly initialised LoRA, identical for both loops."""
    from accelerate.utils import set_seed

    from lorakit.config import LoraSettings
    from lorakit.lora import inject

    base = task.load_base(base_name)
    set_seed(seed)
    model = inject(base.model, LoraSettings(), task.lora_targets, task.modules_to_save)
    return base, model


def hand_loop(task, base, model, examples, steps: int, batch_size: int, device, precision: str) -> float:
    import torch

    model.to(device).train()
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-3)
    batches = trainer_batches(examples, batch_size, steps)  # the same batches as lorakit's loop
    dtype = torch.bfloat16 if precision == "bf16" else None
    start = time.perf_counter()
    for step in range(steps):
        batch = task.collate(base, batches[step])
        batch = {k: v.to(device) if hasattr(v, "to") else v for k, v in batch.items()}
        with torch.autocast(device.type, dtype=dtype, enabled=dtype is not None):
            loss = task.loss(base, model, batch)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
    _sync(device)
    return steps * batch_size / (time.perf_counter() - start)


def lorakit_loop(task, base, model, examples, steps: int, batch_size: int, accelerator) -> float:
    from lorakit.config import TrainSettings
    from lorakit.trainer import Trainer

    settings = TrainSettings(max_steps=steps, batch_size=batch_size, lr=1e-3)
    trainer = Trainer(task, base, model, examples, [], settings, accelerator, show_progress=False)
    start = time.perf_counter()
    trainer.fit()
    _sync(accelerator.device)
    return steps * batch_size / (time.perf_counter() - start)


def _sync(device) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize()


def main() -> None:
    args = parse_args()
    import torch

    torch.set_num_threads(args.threads)
    from lorakit.device import describe, make_accelerator
    from lorakit.plugins import get_host

    task = get_host().task(args.task)()
    accelerator = make_accelerator("auto")
    base, _ = fresh_model(task, args.base, 0)
    examples = task.load_data(Path(args.data), base).examples
    print(f"device: {describe(accelerator)}; task {args.task}; {len(examples)} examples; "
          f"batch {args.batch_size}; {args.steps} steps x {args.rounds} rounds")
    h, o = alternate(lambda: hand_loop(task, *fresh_model(task, args.base, 0), examples, args.steps, args.batch_size,
                                       accelerator.device, accelerator.mixed_precision),
                     lambda: lorakit_loop(task, *fresh_model(task, args.base, 0), examples, args.steps,
                                          args.batch_size, accelerator),
                     args.rounds, "samples/s", 1)
    print(f"median: hand-written {h:.1f} samples/s, lorakit {o:.1f} samples/s")
    print(f"ratio lorakit / hand-written: {o / h:.3f} (goal >= 0.95)")


if __name__ == "__main__":
    main()
