"""Images/s of `lorakit caption` vs a naive captioning loop, side by side.

    python bench/caption_throughput.py [--images 320] [--size 800x600] [--workers 2] [--batch-size 16]

The naive loop is what one writes first: open each image with PIL, run the
processor, `generate` one image at a time. `lorakit caption` decodes and
resizes in worker processes, batches, runs under inference_mode and writes
resumable records. Same model (the demo base), same images (sample images
upscaled to photo size and saved as JPEG, so decoding costs what it costs on
real photos), same generation options, both on the CPU (bench/gpu.py is the
GPU benchmark). Each side is warmed up once, then timed in `--rounds` rounds
that alternate which goes first; the medians are compared. Also prints the
decode-only ceiling: images/s of decoding and resizing alone, so we see which
side limits. Goal: ratio >= 3 on 2 CPU cores.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=320)
    parser.add_argument("--size", default="800x600")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=3)
    return parser.parse_args()


def make_photos(folder: Path, count: int, size: tuple[int, int]) -> list[str]:
    """Sample images upscaled to photo size, as JPEGs (deterministic)."""
    from PIL import Image

    sources = sorted((REPO / "samples" / "caption" / "catalog").glob("*.png"))
    paths = []
    for i in range(count):
        with Image.open(sources[i % len(sources)]) as image:
            photo = image.convert("RGB").resize(size, Image.BICUBIC)
        path = folder / f"photo_{i:04d}.jpg"
        photo.save(path, quality=90)
        paths.append(str(path))
    return paths


def naive(base, paths: list[str], max_new_tokens: int) -> float:
    import torch
    from PIL import Image

    model = base.model.eval()
    start = time.perf_counter()
    for path in paths:
        image = Image.open(path).convert("RGB")
        inputs = base.processor(images=image, return_tensors="pt")
        with torch.no_grad():
            output = model.generate(**inputs, max_new_tokens=max_new_tokens)
        base.processor.decode(output[0], skip_special_tokens=True)
    return len(paths) / (time.perf_counter() - start)


def lorakit_caption(folder: Path, out: Path, workers: int, batch_size: int, max_new_tokens: int) -> float:
    from lorakit_caption.batch import CaptionJob, run_caption_job

    job = CaptionJob(inputs=[folder], out=out, workers=workers, batch_size=batch_size, max_new_tokens=max_new_tokens)
    summary = run_caption_job(job, show_progress=False)
    return summary.done / summary.seconds


def decode_only(paths: list[str], workers: int, batch_size: int) -> float:
    from lorakit_caption.loading import image_batches
    from lorakit_caption.task import CaptionTask

    processor = CaptionTask().load_base("demo").processor.image_processor
    start = time.perf_counter()
    count = sum(len(batch[0]) for batch in image_batches(paths, processor, batch_size, workers))
    return count / (time.perf_counter() - start)


def main() -> None:
    args = parse_args()
    from alternate import cpu_only, rotated  # bench/, this script's folder

    cpu_only()
    import statistics

    import torch

    from lorakit_caption.task import CaptionTask

    torch.set_num_threads(args.threads)
    width, height = map(int, args.size.split("x"))
    folder = Path(tempfile.mkdtemp(prefix="lorakit-bench-"))
    try:
        (folder / "photos").mkdir()
        paths = make_photos(folder / "photos", args.images, (width, height))
        base = CaptionTask().load_base("demo")
        weights = next(base.model.parameters())
        print(f"device: {weights.device}, {str(weights.dtype).removeprefix('torch.')}; {len(paths)} JPEGs of "
              f"{args.size}; demo BLIP; greedy, 30 new tokens; {args.workers} decode workers, batch "
              f"{args.batch_size}; {args.rounds} rounds after a warm-up")
        lorakit_caption(folder / "photos", folder / "warm-up.jsonl", args.workers, args.batch_size, 30)
        naive(base, paths[: args.batch_size], 30)
        figures: dict[str, list[float]] = {"naive": [], "lorakit": []}
        for round_index in range(args.rounds):
            out = folder / f"captions-{round_index}.jsonl"
            for side in rotated(["naive", "lorakit"], round_index):
                if side == "naive":
                    figures["naive"].append(naive(base, paths, 30))
                else:
                    figures["lorakit"].append(lorakit_caption(folder / "photos", out, args.workers, args.batch_size, 30))
            print(f"round {round_index}: naive {figures['naive'][-1]:.1f}, "
                  f"lorakit {figures['lorakit'][-1]:.1f} images/s")
        slow, ours = statistics.median(figures["naive"]), statistics.median(figures["lorakit"])
        ceiling = decode_only(paths, args.workers, args.batch_size)
        print(f"naive loop:        {slow:8.1f} images/s")
        print(f"lorakit caption:   {ours:8.1f} images/s")
        print(f"decode-only limit: {ceiling:8.1f} images/s")
        print(f"ratio lorakit / naive: {ours / slow:.2f} (goal >= 3)")
    finally:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
