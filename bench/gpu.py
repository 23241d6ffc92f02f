"""On a CUDA GPU: what precision and memory settings buy on a real-size BLIP-base.

    python bench/gpu.py [--cache DIR] [--batch-size 16] [--steps 20]

On the real-size BLIP-base captioning model (random weights, built by
bench/real_size.py from the published config), one after the other in this
process, each with the same batches:

* step time of LoRA in fp32 vs bf16 autocast (ratio = speed-up of bf16);
* the bf16 LoRA step with transformers' eager BLIP attention instead of
  lorakit's fused one, and with the norm and GELU outputs kept as peft keeps
  them (``--train.recompute_inputs false``; speed and peak ratios);
* achieved TFLOP/s of the bf16 LoRA step (FLOPs counted by torch's
  FlopCounterMode on one step) as a fraction of the device's dense bf16
  peak (goal >= 0.4);
* peak GPU memory of a step: LoRA vs full fine-tuning (AdamW on every
  weight; goal <= 0.5), and of LoRA on a base held in bf16 and in 4 bits (QLoRA).

Prints the device and precision with every figure. Needs CUDA; exits with a
message on a machine without it.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "bench"))

#: Dense bf16 tensor-core peaks (TFLOP/s, no sparsity) from the vendors' data sheets.
BF16_PEAK_TFLOPS = {"H200": 989.0, "H100": 989.0, "A100": 312.0, "L40S": 362.0, "L4": 121.0, "A10": 125.0,
                    "RTX 4090": 165.0, "RTX 3090": 71.0, "T4": 65.0, "V100": 125.0}


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache", type=Path, default=Path.home() / ".cache" / "lorakit-bench")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--steps", type=int, default=20)
    return parser.parse_args()


def peak_tflops(name: str) -> float | None:
    for key, value in BF16_PEAK_TFLOPS.items():
        if key in name:
            return value
    return None


def training_setup(folder: Path, batch_size: int, flags: list[str]):
    """The model a caption run would train on ``folder`` and one batch of the sample catalog, on the GPU."""
    import real_size
    from accelerate.utils import set_seed

    from lorakit import runs

    config = runs.load_config("caption", ["--data", str(REPO / "samples/caption/catalog"), "--base", str(folder),
                                          "--train.batch_size", str(batch_size), *real_size.CAPTION_LORA_ONLY,
                                          *flags])
    made = runs.training_model(runs.make_task(config), config)
    set_seed(0)
    batch = made.task.collate(made.base, made.splits.train[:batch_size])
    batch = {k: v.cuda() if hasattr(v, "cuda") else v for k, v in batch.items()}
    return made, made.model.cuda().train(), batch


def full_fine_tuning(model) -> None:
    """Every weight trainable (no LoRA), as full fine-tuning would be."""
    for name, p in model.named_parameters():
        p.requires_grad_("lora_" not in name)


def step_time(made, model, batch, steps: int, dtype) -> tuple[float, int]:
    """Seconds per optimizer step and the peak memory (bytes) of the steps."""
    import torch

    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)
    autocast = torch.autocast("cuda", dtype=dtype) if dtype is not None else contextlib.nullcontext()

    def one():
        with autocast:
            loss = made.task.loss(made.base, model, batch)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    for _ in range(3):  # warm-up: kernels chosen, allocator grown
        one()
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    started = time.perf_counter()
    for _ in range(steps):
        one()
    torch.cuda.synchronize()
    return (time.perf_counter() - started) / steps, torch.cuda.max_memory_allocated()


def step_flops(made, model, batch) -> int:
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with counter, torch.autocast("cuda", dtype=torch.bfloat16):
        made.task.loss(made.base, model, batch).backward()
    model.zero_grad(set_to_none=True)
    return counter.get_total_flops()


def release() -> None:
    """Free what the last figure's model held (its names are dropped by the caller)."""
    import gc

    import torch

    gc.collect()
    torch.cuda.empty_cache()


def main() -> None:
    import torch

    args = parse_args()
    if not torch.cuda.is_available():
        raise SystemExit("bench/gpu.py needs a CUDA GPU; on a CPU run bench/scale.py")
    import real_size

    folder = real_size.ensure("caption", args.cache)
    name = torch.cuda.get_device_name()
    torch.backends.cuda.matmul.allow_tf32 = False  # fp32 means fp32 here
    print(f"device: {name}, torch {torch.__version__}; BLIP-base captioning, batch {args.batch_size}, "
          f"{args.steps} steps per figure")
    rows = []

    made, model, batch = training_setup(folder, args.batch_size, [])
    fp32_s, lora_fp32_peak = step_time(made, model, batch, args.steps, None)
    bf16_s, lora_bf16_peak = step_time(made, model, batch, args.steps, torch.bfloat16)
    flops = step_flops(made, model, batch)
    rows.append(("LoRA step, fp32", f"{fp32_s * 1000:.1f} ms", f"peak {lora_fp32_peak / 2**30:.2f} GiB"))
    rows.append(("LoRA step, bf16 autocast", f"{bf16_s * 1000:.1f} ms", f"peak {lora_bf16_peak / 2**30:.2f} GiB"))
    rows.append(("bf16 speed-up over fp32", f"{fp32_s / bf16_s:.2f}x", ""))
    achieved = flops / bf16_s / 1e12
    peak = peak_tflops(name)
    fraction = f"{achieved / peak:.2f} of {peak:.0f} peak (goal >= 0.4)" if peak else "peak unknown for this device"
    rows.append(("bf16 LoRA step TFLOP/s", f"{achieved:.1f}", fraction))
    from lorakit_blip.attention import fuse_attention, unfuse_attention

    unfuse_attention(model)  # transformers' own attention, for comparison
    eager_s, eager_peak = step_time(made, model, batch, args.steps, torch.bfloat16)
    fuse_attention(model)
    rows.append(("LoRA step, bf16, eager attention", f"{eager_s * 1000:.1f} ms",
                 f"peak {eager_peak / 2**30:.2f} GiB; fused attention: {eager_s / bf16_s:.2f}x the speed, "
                 f"{lora_bf16_peak / eager_peak:.2f} of the peak"))
    full_fine_tuning(model)
    _, full_peak = step_time(made, model, batch, args.steps // 2 or 1, torch.bfloat16)
    rows.append(("full fine-tuning step, bf16", "", f"peak {full_peak / 2**30:.2f} GiB"))
    rows.append(("LoRA / full fine-tuning memory", f"{lora_bf16_peak / full_peak:.2f}", "goal <= 0.5"))
    made = model = batch = None
    release()

    made, model, batch = training_setup(folder, args.batch_size, ["--train.recompute_inputs", "false"])
    outputs_s, outputs_peak = step_time(made, model, batch, args.steps, torch.bfloat16)
    rows.append(("LoRA step, bf16, norm/GELU outputs kept", f"{outputs_s * 1000:.1f} ms",
                 f"peak {outputs_peak / 2**30:.2f} GiB; inputs kept instead: {outputs_s / bf16_s:.2f}x the speed, "
                 f"{lora_bf16_peak / outputs_peak:.2f} of the peak"))
    made = model = batch = None
    release()

    for base_dtype in ("bf16", "4bit"):
        if base_dtype == "4bit" and not _has_bitsandbytes():
            rows.append(("LoRA on a 4-bit base", "skipped", "pip install bitsandbytes"))
            continue
        made, model, batch = training_setup(folder, args.batch_size, ["--base_dtype", base_dtype])
        seconds, held_peak = step_time(made, model, batch, args.steps // 2 or 1, torch.bfloat16)
        rows.append((f"LoRA on a {base_dtype} base, bf16", f"{seconds * 1000:.1f} ms",
                     f"peak {held_peak / 2**30:.2f} GiB = {held_peak / lora_bf16_peak:.2f} of the fp32 base's"))
        made = model = batch = None
        release()

    width = max(len(r[0]) for r in rows)
    for label, value, note in rows:
        print(f"{label:<{width}}  {value:>10}  {note}")


def _has_bitsandbytes() -> bool:
    import importlib.util

    return importlib.util.find_spec("bitsandbytes") is not None


if __name__ == "__main__":
    main()
