"""Real-size models on the CPU: LoRA vs full fine-tuning memory, lorakit's loop vs a
hand-written accelerate + peft loop, and `lorakit plan` vs the measured peak.

    python bench/scale.py [--quick] [--only caption,vqa,music,voice] [--cache DIR]

For each real-size model (random weights from its published config, built
once by ``bench/real_size.py`` into ``--cache``):

(a) peak memory of a few LoRA training steps (lorakit's own loop) and of full
    fine-tuning (every weight the loss reaches trainable, AdamW, the base's
    dropout keeping the same boolean masks), each in a fresh process; the
    ratio LoRA / full (goal <= 0.5);
(b) training samples/s of lorakit's Trainer and of a hand-written accelerate +
    peft loop on the same fresh LoRA model and the same batches, alternating
    in one process so machine noise hits both; the ratio (goal >= 1.0). Both
    use peft's own LoRA dropout and inputs and torch's dropout masks
    (``--train.recompute_dropout false --train.recompute_inputs false
    --train.bool_dropout_masks false``), so the loops do the same computation;
(c) `lorakit plan`'s predicted peak against the measured LoRA peak (goal:
    within 25%);
(d) the LoRA peak with ``--train.gradient_checkpointing`` (the Hugging Face
    bases; coqui's VITS has none), against full fine-tuning without it.

Peaks are bytes allocated (malloc'd, plus weights read from mapped files)
above what the process held before loading the model: what a plan predicts
(see ``lorakit/peak.py``); the resident memory, which glibc inflates, is
shown beside it. Each figure is a ratio of two runs measured here, side by
side; absolute times depend on the machine. ``--quick`` measures the VITS
only, at batch 2, with fewer steps (a couple of minutes).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import real_size  # noqa: E402

#: Model -> (recipe or task, batch size, extra flags) of the measured runs.
RUNS = {
    # The shipped recipe for the real BLIP-base: r 16, dropout 0.05; LoRA alone (see real_size).
    "caption": ("caption-blip-base", 4, real_size.CAPTION_LORA_ONLY),
    "vqa": ("vqa", 4, []),
    "music": ("music-style", 4, []),
    # A named slot: choosing one of 109 by synthesising with each is slow and changes no memory.
    "voice": ("voice-clone", 8, ["--slot", "p225"]),
}
GOALS = {"lora_vs_full": 0.5, "speed": 1.0, "plan": 0.25}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cache", type=Path, default=Path.home() / ".cache" / "lorakit-bench",
                        help="where the real-size model folders are built (once)")
    parser.add_argument("--only", help="comma-separated subset of: " + ", ".join(real_size.MODELS))
    parser.add_argument("--quick", action="store_true", help="the VITS only, batch 2, fewer steps")
    parser.add_argument("--steps", type=int, help="optimizer steps per measured run (default 3, quick 2)")
    parser.add_argument("--rounds", type=int, help="speed rounds, each loop once per round (default 3, quick 1)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--request", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def run_flags(key: str, folder: Path, batch: int) -> list[str]:
    _, _, data = real_size.MODELS[key]
    extra = RUNS[key][2]
    return ["--base", str(folder), "--data", str(data), "--train.batch_size", str(batch), "--train.grad_accum", "1",
            *extra]


def load(task: str, flags: list[str]) -> Any:
    from lorakit.runs import load_config

    return load_config(task, flags)


# -- children: each measurement in a fresh process ----------------------------------------


def child(kind: str, request: dict) -> dict:
    config = load(request["task"], request["flags"])
    if kind == "full":
        return full_peak(config, request["steps"])
    if kind == "speed":
        return speeds(config, request["steps"], request["rounds"])
    raise SystemExit(f"unknown child {kind}")


def spawn(kind: str, request: dict) -> dict:
    done = subprocess.run([sys.executable, __file__, "--child", kind, "--request", json.dumps(request)],
                          capture_output=True, text=True)
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode or not lines:
        raise SystemExit(f"{kind} run failed:\n{done.stderr[-3000:]}")
    return json.loads(lines[-1])


def first_batches(config: Any, examples: list, count: int) -> list[list]:
    """The batches lorakit's loop trains on first (its epoch order), repeated as needed."""
    from lorakit.batches import EpochOrder

    batches = EpochOrder(examples, config.train.batch_size, config.train.seed).batches(0)
    return [batches[i % len(batches)] for i in range(count)]


def full_peak(config: Any, steps: int) -> dict:
    """Peak memory of full fine-tuning: the base with every weight trainable,
    one AdamW per optimizer group, the task's own loss, dropout masks kept
    as lorakit's loop keeps them (booleans on a CPU)."""
    import torch

    from lorakit.capabilities import SeveralOptimizers
    from lorakit.dropout_masks import bool_dropout_masks
    from lorakit.peak import peak_of
    from lorakit.run_data import load_splits
    from lorakit.runs import make_task
    from lorakit.step_losses import step_losses
    from lorakit.task import Data

    task = make_task(config)

    def masks():
        return bool_dropout_masks(torch.device("cpu"), config.train.bool_dropout_masks)

    def build():
        base = task.load_base(config.base)
        splits = load_splits(task, base, config)
        task.prepare_base(base, Data(splits.train, splits.summary))
        model = base.model.train().requires_grad_(True)
        several = isinstance(task, SeveralOptimizers)
        if several:
            task.prepare_training(base, model)
            groups = {name: g.params for name, g in task.optimizer_groups(base, model).items()}
        else:
            groups = {"main": list(model.parameters())}
        optimizers = {name: torch.optim.AdamW(params, lr=1e-5) for name, params in groups.items()}
        batches = first_batches(config, splits.train, steps)

        def train():
            for examples in batches:
                batch = task.collate(base, examples)
                # Each loss computed as lorakit's loop does: in turn, its dropout keeping boolean masks on a CPU.
                for name, loss in step_losses(task, base, model, batch, masks):
                    loss.backward(inputs=groups[name] if several else None)
                    optimizers[name].step()
                    optimizers[name].zero_grad(set_to_none=True)
        return train

    return peak_of(lambda: task.load_base(config.base), build)


def hand_loop(config: Any, steps: int) -> float:
    """Samples/s of the least one writes with accelerate and peft: the task's
    base and loss, LoRA on the same targets, AdamW, accelerate's backward."""
    import torch
    from accelerate import Accelerator
    from accelerate.utils import set_seed
    from peft import LoraConfig, get_peft_model

    from lorakit.capabilities import SeveralOptimizers
    from lorakit.lora import match_conv_geometry
    from lorakit.run_data import load_splits
    from lorakit.runs import make_task
    from lorakit.task import Data

    task = make_task(config)
    base = task.load_base(config.base)
    splits = load_splits(task, base, config)
    to_save = list(task.prepare_base(base, Data(splits.train, splits.summary)))
    set_seed(config.train.seed)
    lora = LoraConfig(r=config.lora.r, lora_alpha=config.lora.alpha, lora_dropout=config.lora.dropout,
                      target_modules=task.lora_targets, modules_to_save=to_save or None)
    # peft builds a dilated convolution's lora_A without its dilation (the VITS
    # decoder's): any peft loop needs lorakit's fix to run at all.
    model = match_conv_geometry(get_peft_model(base.model, lora))
    several = isinstance(task, SeveralOptimizers)
    if several:
        task.prepare_training(base, model)
        groups = {name: g.params for name, g in task.optimizer_groups(base, model).items()}
    else:
        groups = {"main": [p for p in model.parameters() if p.requires_grad]}
    accelerator = Accelerator(cpu=not torch.cuda.is_available())
    model = accelerator.prepare(model)
    optimizers = {name: accelerator.prepare(torch.optim.AdamW(params, lr=config.train.lr))
                  for name, params in groups.items()}
    batches = first_batches(config, splits.train, steps)
    model.train()
    started = time.perf_counter()
    for examples in batches:
        batch = task.collate(base, examples)
        losses = task.training_step(base, model, batch) if several else [("main", task.loss(base, model, batch))]
        for name, loss in losses:
            accelerator.backward(loss, inputs=groups[name] if several else None)
            optimizers[name].step()
            optimizers[name].zero_grad(set_to_none=True)
    return steps * config.train.batch_size / (time.perf_counter() - started)


def lorakit_loop(config: Any, steps: int) -> float:
    """Samples/s of lorakit's Trainer on the model a run builds."""
    import dataclasses

    from lorakit.capabilities import SeveralOptimizers
    from lorakit.device import make_accelerator
    from lorakit.runs import make_task, training_model
    from lorakit.trainer import Trainer

    task = make_task(config)
    made = training_model(task, config)
    if isinstance(task, SeveralOptimizers):
        task.prepare_training(made.base, made.model)
    settings = dataclasses.replace(config.train, max_steps=steps, eval_every=0, save_every=0, metric="val_loss",
                                   patience=None)
    trainer = Trainer(task, made.base, made.model, made.splits.train, [], settings,
                      make_accelerator(config.train.precision, config.base_dtype), show_progress=False)
    started = time.perf_counter()
    trainer.fit()
    return steps * config.train.batch_size / (time.perf_counter() - started)


def speeds(config: Any, steps: int, rounds: int) -> dict:
    """Both loops, alternating (ABBA), after a one-step warm-up of each."""
    from lorakit.device import describe, make_accelerator

    hand_loop(config, 1)
    lorakit_loop(config, 1)
    hand, ours = [], []
    for index in range(rounds):
        order = (hand_loop, lorakit_loop) if index % 2 == 0 else (lorakit_loop, hand_loop)
        for loop in order:
            (hand if loop is hand_loop else ours).append(loop(config, steps))
    return {"hand": statistics.median(hand), "lorakit": statistics.median(ours), "rounds": [hand, ours],
            "device": describe(make_accelerator(config.train.precision, config.base_dtype))}


# -- the parent: one model after the other ------------------------------------------------------


def plan_of(task: str, flags: list[str]) -> dict:
    done = subprocess.run([sys.executable, "-m", "lorakit", "plan", task, *flags, "--json"], capture_output=True,
                          text=True)
    if done.returncode:
        raise SystemExit(f"lorakit plan failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout)


def bench_model(key: str, folder: Path, batch: int, steps: int, rounds: int) -> dict:
    from lorakit.peak import measure

    task = RUNS[key][0]
    flags = run_flags(key, folder, batch)
    request = {"task": task, "flags": flags, "steps": steps, "rounds": rounds}
    same_computation = {**request, "flags": [*flags, "--train.recompute_dropout", "false",
                                             "--train.recompute_inputs", "false",
                                             "--train.bool_dropout_masks", "false"]}
    started = time.perf_counter()
    planned = plan_of(task, flags)
    lora = measure(load(task, flags), steps=steps)
    checkpointed = None if key == "voice" else measure(
        load(task, [*flags, "--train.gradient_checkpointing", "true"]), steps=steps).peak
    full = spawn("full", request)
    speed = spawn("speed", same_computation)
    return {"model": key, "task": task, "batch": batch, "parameters": planned["frozen_parameters"] +
            planned["trained_parameters"], "planned": planned["bytes"]["total"], "lora": lora.peak,
            "lora_resident": lora.resident, "checkpointed": checkpointed, "full": full["peak"], "full_resident": full["resident"],
            "hand": speed["hand"], "lorakit": speed["lorakit"], "rounds": speed["rounds"], "device": speed["device"],
            "seconds": time.perf_counter() - started}


def show(rows: list[dict]) -> None:
    from rich.console import Console
    from rich.table import Table

    gb = lambda n: f"{n / 1e9:.2f}"  # noqa: E731
    table = Table(title="real-size models, random weights (GB = 1e9 bytes)")
    for column in ("model", "params", "batch", "plan GB", "LoRA GB", "plan/LoRA", "full GB", "LoRA/full",
                   "LoRA+ckpt GB", "ckpt/full", "hand samples/s", "lorakit samples/s", "lorakit/hand"):
        table.add_column(column, justify="left" if column == "model" else "right")
    for r in rows:
        table.add_row(r["model"], f"{r['parameters'] / 1e6:.0f} M", str(r["batch"]), gb(r["planned"]), gb(r["lora"]),
                      f"{r['planned'] / r['lora']:.2f}", gb(r["full"]), f"{r['lora'] / r['full']:.2f}",
                      gb(r["checkpointed"]) if r["checkpointed"] else "-",
                      f"{r['checkpointed'] / r['full']:.2f}" if r["checkpointed"] else "-",
                      f"{r['hand']:.3f}", f"{r['lorakit']:.3f}", f"{r['lorakit'] / r['hand']:.3f}")
    console = Console(width=160)
    console.print(table)
    for r in rows:
        rounds = "; ".join(f"{name} " + ", ".join(f"{v:.3f}" for v in values)
                           for name, values in zip(("hand", "lorakit"), r["rounds"]))
        console.print(f"{r['model']}: resident peak LoRA {gb(r['lora_resident'])} GB, full {gb(r['full_resident'])} GB; "
                      f"samples/s by round: {rounds}; {r['seconds']:.0f} s")
    verdicts = {
        f"LoRA/full <= {GOALS['lora_vs_full']}": all(r["lora"] / r["full"] <= GOALS["lora_vs_full"] for r in rows),
        f"lorakit/hand >= {GOALS['speed']}": all(r["lorakit"] / r["hand"] >= GOALS["speed"] for r in rows),
        f"plan within {GOALS['plan']:.0%} of measured": all(abs(r["planned"] / r["lora"] - 1) <= GOALS["plan"]
                                                            for r in rows),
    }
    for goal, met in verdicts.items():
        console.print(f"goal {goal}: {'met' if met else 'NOT met'}")


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.child:
        print(json.dumps(child(args.child, json.loads(args.request))))
        return
    keys = real_size.parse_only(args.only or ("voice" if args.quick else None))
    steps = args.steps or (2 if args.quick else 3)
    rounds = args.rounds or (1 if args.quick else 3)
    import torch

    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads (OMP_NUM_THREADS="
          f"{os.environ.get('OMP_NUM_THREADS', 'unset')}), {steps} steps per measured run, {rounds} speed rounds")
    rows = []
    for key in keys:
        folder = real_size.ensure(key, args.cache)
        batch = 2 if args.quick else RUNS[key][1]
        row = bench_model(key, folder, batch, steps, rounds)
        print(f"{key}: device {row['device']}; plan {row['planned'] / 1e9:.2f} GB, LoRA {row['lora'] / 1e9:.2f} GB, "
              f"full {row['full'] / 1e9:.2f} GB; hand {row['hand']:.3f}, lorakit {row['lorakit']:.3f} samples/s",
              flush=True)
        rows.append(row)
    show(rows)


if __name__ == "__main__":
    main()
