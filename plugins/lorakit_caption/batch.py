"""Batch captioning of image folders: fast, resumable, traceable.

Images are decoded and resized in DataLoader worker processes while the main
process generates; the model is loaded once with every adapter merged in
(weights as ``--adapter dir:0.7``); records are appended and fsynced batch by
batch (see ``outputs.py``), so a resumed run captions only what is missing.
Under ``accelerate launch`` each process takes every N-th image and writes
its own shard; the first process merges the shards at the end.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lorakit.api import DataError, is_image, list_files

from lorakit_caption.outputs import RecordFile, write_sidecar


@dataclass
class CaptionJob:
    """What ``lorakit caption`` was asked to do."""

    inputs: list[Path]
    out: Path
    format: str = "jsonl"
    adapters: list[tuple[str, float]] = field(default_factory=list)
    base: str | None = None
    trigger: str | None = None
    prompt: str = ""
    num_beams: int = 1
    max_new_tokens: int = 30
    batch_size: int = 16
    workers: int = 2
    resume: bool = False
    recursive: bool = False
    rerank: str | None = None
    clip: str | None = None
    candidates: int = 4
    ignore_base_mismatch: bool = False


@dataclass
class CaptionSummary:
    done: int = 0
    skipped: int = 0
    failed: int = 0
    clip_mean: float | None = None
    seconds: float = 0.0
    out: Path | None = None
    errors: Path | None = None
    #: "2/4" when this is one of several processes (each reports its share).
    process: str = ""


def list_images(inputs: list[Path], recursive: bool) -> list[str]:
    """Image files named by ``inputs`` (files, or folders of them), absolute and sorted."""
    found: list[str] = []
    for item in map(Path, inputs):
        if item.is_file():
            found.append(str(item.resolve()))
        elif item.is_dir():
            files = list_files(item) if recursive else sorted(p for p in item.iterdir() if p.is_file())
            found += [str(p.resolve()) for p in files if is_image(p)]
        else:
            raise DataError(f"{item}: no such image file or folder")
    return sorted(dict.fromkeys(found))


def errors_path(out: Path) -> Path:
    return out.with_name(out.stem + ".errors.jsonl")


def run_caption_job(job: CaptionJob, show_progress: bool = True) -> CaptionSummary:
    """Caption every image of ``job`` not captioned yet; returns the counts."""
    import torch
    from accelerate import PartialState

    from lorakit_caption.captioner import load_captioner

    # cpu=True is what makes accelerate join the launched processes without CUDA.
    state = PartialState(cpu=not torch.cuda.is_available())
    images = list_images(job.inputs, job.recursive)
    if not images:
        raise DataError(f"no images found in {', '.join(map(str, job.inputs))}"
                        + ("" if job.recursive else " (add --recursive for subfolders)"))
    sharded = state.num_processes > 1
    out = shard_path(job.out, state.process_index, state.num_processes) if sharded else job.out
    if sharded and job.out.exists() and not job.resume:
        raise DataError(f"{job.out} already exists; pass --resume or choose another --out")
    # The model and adapters load before any output file exists: a broken
    # base or adapter leaves nothing behind that would block the rerun.
    captioner = load_captioner(job)
    records = RecordFile(out, resume=job.resume, kind="csv" if job.format == "csv" else "jsonl")
    if sharded:
        # Every process must split the same list: what any shard (or the
        # merged file) holds is done. Torn tails are cut before anyone reads,
        # and nobody appends before everyone has read.
        state.wait_for_everyone()
        already = _done_everywhere(job.out, job.format, state.num_processes)
        state.wait_for_everyone()
    else:
        already = set(records.done)
    todo = [image for image in images if image not in already][state.process_index :: state.num_processes]
    errors = RecordFile(errors_path(out), resume=True)
    summary = CaptionSummary(skipped=len([i for i in images if i in already]), out=job.out, errors=errors_path(job.out),
                             process=f"{state.process_index + 1}/{state.num_processes}" if sharded else "")
    started = time.perf_counter()
    try:
        _caption_all(captioner, todo, job, records, errors, summary, show_progress and state.is_main_process)
    finally:
        records.close()
        errors.close()
    summary.seconds = time.perf_counter() - started
    if sharded:
        state.wait_for_everyone()
        if state.is_main_process:
            merge_shards(job.out, job.format, state.num_processes)
    return summary


def _caption_all(captioner: Any, todo: list[str], job: CaptionJob, records: RecordFile, errors: RecordFile,
                 summary: CaptionSummary, show_progress: bool) -> None:
    from lorakit.api import rate_progress

    from lorakit_caption.loading import image_batches

    scores: list[float] = []
    with rate_progress("caption", len(todo), unit="images", enabled=show_progress) as advance:
        for paths, pixels, failures in image_batches(todo, captioner.image_processor, job.batch_size, job.workers):
            errors.append([{"image": path, "error": reason} for path, reason in failures])
            summary.failed += len(failures)
            done = captioner.caption(paths, pixels) if paths else []
            for record in done:
                if job.format == "sidecar":
                    write_sidecar(record["image"], record["caption"])
                if record.get("clip_score") is not None:
                    scores.append(record["clip_score"])
            records.append(done)
            summary.done += len(done)
            advance(len(paths) + len(failures))
    if scores:
        summary.clip_mean = sum(scores) / len(scores)


def shard_path(out: Path, rank: int, world: int) -> Path:
    return out.with_name(f"{out.stem}.shard{rank}-of-{world}{out.suffix}")


def _done_in(path: Path, fmt: str) -> set[str]:
    records = RecordFile(path, resume=True, kind="csv" if fmt == "csv" else "jsonl")
    records.close()
    return records.done


def _done_everywhere(out: Path, fmt: str, world: int) -> set[str]:
    """Images recorded in the merged output or in any process's shard."""
    done: set[str] = set()
    for path in (out, *(shard_path(out, rank, world) for rank in range(world))):
        if path.exists():
            done |= _done_in(path, fmt)
    return done


def merge_shards(out: Path, fmt: str, world: int) -> None:
    """Fold every shard (and its errors) into ``out``, each image once, then drop the shards."""
    kind = "csv" if fmt == "csv" else "jsonl"
    for path, errors in ((shard_path(out, r, world), errors_path(shard_path(out, r, world))) for r in range(world)):
        for source, target, source_kind in ((path, out, kind), (errors, errors_path(out), "jsonl")):
            if not source.exists():
                continue
            _append_new(source, target, source_kind)
            source.unlink()


def _append_new(source: Path, target: Path, kind: str) -> None:
    import csv
    import io
    import json

    existing = RecordFile(target, resume=True, kind=kind)
    text = source.read_text(encoding="utf-8")
    if kind == "csv":
        rows = list(csv.DictReader(io.StringIO(text)))
        new = [r for r in rows if r["image"] not in existing.done]
        for row in new:
            for key in ("adapters", "generation"):
                row[key] = json.loads(row[key]) if row.get(key) else None
    else:
        new = [json.loads(line) for line in text.splitlines() if line.strip()]
        new = [r for r in new if r["image"] not in existing.done or "error" in r]
    existing.append(new)
    existing.close()
