"""Batch captioning of image folders: fast, resumable, traceable.

Images are decoded and resized in DataLoader worker processes while the main
process generates; the model is loaded once with every adapter merged in
(weights as ``--adapter dir:0.7``); records are appended and fsynced batch by
batch (see ``outputs.py``), so a resumed run captions only what is missing.
Under ``accelerate launch`` each process takes every N-th image and writes
its own shard; the first process merges the shards at the end.

Whatever stops a decoding worker (an exception, a batch it cannot hand over,
its death, its silence) ends the run with one message instead of a hang:
what is written is whole, and ``--resume`` finishes the job.
"""

from __future__ import annotations

import contextlib
import errno
import glob
import os
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

from lorakit.api import (IMAGE_SUFFIXES, ConfigError, DataError, LorakitError, OutputError, exclusive_lock, is_image,
                         list_files, warn)

from lorakit_caption import loading
from lorakit_caption.loading import image_batches
from lorakit_caption.outputs import (EXISTING, KEEP, RecordFile, json_lines, parse_records, sidecar_blocker,
                                     sidecar_path, write_sidecar)


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
    #: Written before every caption; None: ``"TRIGGER, "`` in sidecar files when there is a trigger, else nothing.
    prefix: str | None = None
    #: Written after every caption.
    suffix: str = ""
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
    #: What a sidecar run does with a caption file already there: skip, overwrite, append or prepend.
    existing: str = "skip"


@dataclass
class CaptionSummary:
    done: int = 0
    skipped: int = 0
    #: Images whose caption file was already there and kept (``--existing skip``).
    kept: int = 0
    failed: int = 0
    #: Captions the length cap (``--max-new-tokens``) cut before the model ended them.
    cut: int = 0
    clip_mean: float | None = None
    seconds: float = 0.0
    out: Path | None = None
    errors: Path | None = None
    #: "2/4" when this is one of several processes (each reports its share).
    process: str = ""


#: Files a folder of images holds beside them: captions, metadata, lorakit's own outputs.
_COMPANION_SUFFIXES = (".txt", ".json", ".jsonl", ".csv")


def find_images(inputs: list[Path], recursive: bool) -> tuple[list[str], list[str]]:
    """The image files named by ``inputs`` (files, or folders of them),
    absolute and sorted, and the other files of those folders that are not
    images lorakit reads (RAW photos, PDFs...), to be told about; captions,
    metadata and hidden files are not counted.

    A symbolic link stays the link (it is not resolved): its record names the
    path the user sees, and its caption file goes beside it, inside the folder.
    """
    found: list[str] = []
    others: list[str] = []
    for item in map(Path, inputs):
        if item.is_file():
            found.append(os.path.abspath(item))
        elif item.is_dir():
            files = list_files(item) if recursive else sorted(p for p in item.iterdir() if p.is_file())
            found += [os.path.abspath(p) for p in files if is_image(p)]
            others += [str(p) for p in files if not is_image(p) and not p.name.startswith(".")
                       and p.suffix.lower() not in _COMPANION_SUFFIXES]
        else:
            raise DataError(f"{item}: no such image file or folder")
    return sorted(dict.fromkeys(found)), others


def _not_images(others: list[str]) -> str:
    """``3 files that are not images lorakit reads (2 .cr2, 1 .pdf: raw.cr2, ...)``."""
    kinds: dict[str, int] = {}
    for name in others:
        suffix = Path(name).suffix.lower() or "without a suffix"
        kinds[suffix] = kinds.get(suffix, 0) + 1
    counted = ", ".join(f"{count} {suffix}" for suffix, count in sorted(kinds.items(), key=lambda k: -k[1]))
    shown = ", ".join(Path(name).name for name in others[:3]) + (", ..." if len(others) > 3 else "")
    what = f"{len(others)} files that are not images" if len(others) > 1 else "1 file that is not an image"
    return f"{what} lorakit reads ({counted}: {shown}); it reads {', '.join(IMAGE_SUFFIXES)}"


def input_roots(inputs: list[Path]) -> list[Path]:
    """The real folders a sidecar run may write in: each folder given, and the folder of each file given."""
    return [Path(os.path.realpath(item if Path(item).is_dir() else os.path.dirname(os.path.abspath(item))))
            for item in inputs]


def errors_path(out: Path) -> Path:
    return out.with_name(out.stem + ".errors.jsonl")


def _kind(fmt: str) -> str:
    return "csv" if fmt == "csv" else "jsonl"


def run_caption_job(job: CaptionJob, show_progress: bool = True) -> CaptionSummary:
    """Caption every image of ``job`` not captioned yet; returns the counts."""
    import torch
    from accelerate import PartialState

    # cpu=True is what makes accelerate join the launched processes without CUDA.
    state = PartialState(cpu=not torch.cuda.is_available())
    if job.existing not in EXISTING:
        raise ConfigError(f"--existing {job.existing!r} is unknown; choose one of {', '.join(EXISTING)}")
    images, others = find_images(job.inputs, job.recursive)
    if not images:
        raise DataError(f"no images found in {', '.join(map(str, job.inputs))}"
                        + ("" if job.recursive else " (add --recursive for subfolders)")
                        + (f"; it holds {_not_images(others)}" if others else ""))
    if others and state.is_main_process:
        warn(f"not captioned: {_not_images(others)}; convert them to caption them")
    with _held(job.out, state.is_main_process):
        return _caption_missing(job, images, state, show_progress)


def _caption_missing(job: CaptionJob, images: list[str], state: Any, show_progress: bool) -> CaptionSummary:
    from lorakit_caption.captioner import load_captioner

    sharded = state.num_processes > 1
    out = shard_path(job.out, state.process_index, state.num_processes) if sharded else job.out
    # What any earlier run left (the output, shards of any number of processes)
    # is read, and a damaged line reported, before the model loads; every
    # process splits the same list, and nobody appends before everyone has read.
    already = _done_everywhere(job.out, job.format) if job.resume else _refuse_leftovers(job.out)
    if sharded:
        state.wait_for_everyone()
    # The model and adapters load before any output file exists: a broken
    # base or adapter leaves nothing behind that would block the rerun.
    captioner = load_captioner(job)
    listed = set(images)
    missing = [image for image in images if not _is_done(image, already, listed)]
    if job.resume:  # what failed before is tried again now: its old reason would outlive a success
        if state.is_main_process:
            _forget_errors(job.out, set(missing))
        if sharded:
            state.wait_for_everyone()
    records = RecordFile(out, resume=job.resume, kind=_kind(job.format))
    todo = missing[state.process_index :: state.num_processes]
    errors = RecordFile(errors_path(out), resume=True, lazy=True)
    summary = CaptionSummary(skipped=len(images) - len(missing), out=job.out, errors=errors_path(job.out),
                             process=f"{state.process_index + 1}/{state.num_processes}" if sharded else "")
    started = time.perf_counter()
    try:
        if job.format == "sidecar":
            todo = _sidecar_plan(todo, _second_claims(images), job, errors, summary)
        _caption_all(captioner, todo, job, records, errors, summary, show_progress and state.is_main_process)
    finally:
        records.close()
        errors.close()
    summary.seconds = time.perf_counter() - started
    if sharded:
        state.wait_for_everyone()
    if state.is_main_process:
        merge_shards(job.out, job.format)
    return summary


def _held(out: Path, main: bool) -> contextlib.AbstractContextManager[None]:
    """``out`` written by this job alone (two jobs on one --out would caption
    every image twice); in a job of several processes the first holds it."""
    if not main:
        return contextlib.nullcontext()
    return exclusive_lock(out.with_name(f".{out.name}.lock"),
                          in_use=f"{out} is being written by another lorakit caption (process {{pid}}); let it "
                                 "finish, then run the same command with --resume for what is missing, or choose "
                                 "another --out",
                          cannot_write=f"cannot write beside {out} ({{reason}}); choose an --out where you can write")


def _is_done(image: str, done: set[str], listed: set[str]) -> bool:
    """``image`` is recorded, by this path or (outputs of versions that resolved
    links) by its real path, unless that real path is an image of its own here."""
    if image in done:
        return True
    real = os.path.realpath(image)
    return real != image and real in done and real not in listed


def _forget_errors(out: Path, retried: set[str]) -> None:
    """The errors files of ``out`` (and of its shards) without the images
    tried again now; each rewritten whole (or removed when none is left)."""
    from lorakit.api import atomic_write_text

    for path in (errors_path(out), *map(errors_path, _shards(out))):
        if not path.exists():
            continue
        records = _read_whole(path, "jsonl")
        kept = [record for record in records if record.get("image") not in retried]
        if not kept:
            path.unlink()  # written only when something failed
        elif len(kept) < len(records):
            atomic_write_text(path, json_lines(kept))


def _refuse_leftovers(out: Path) -> set[str]:
    for path in (out, *_shards(out)):
        if path.exists():
            raise DataError(f"{path} already exists; pass --resume to caption only what is missing, "
                            "or choose another --out")
    return set()


def _second_claims(images: list[str]) -> dict[str, str]:
    """Each image whose caption file an image before it in ``images`` writes
    (``photo.jpg`` and ``photo.png`` both caption into ``photo.txt``), with that image."""
    first: dict[str, str] = {}
    later = {}
    for image in images:
        claimed = first.setdefault(os.path.normcase(sidecar_path(image)), image)
        if claimed != image:
            later[image] = claimed
    return later


def _sidecar_plan(todo: list[str], second_claims: dict[str, str], job: CaptionJob, errors: RecordFile,
                  summary: CaptionSummary) -> list[str]:
    """The images whose caption file will be written; the others are kept
    (``--existing skip``) or, when it may not be written there (or another
    image's caption goes there: ``second_claims``), failures."""
    roots = input_roots(job.inputs)
    go, failures = [], []
    for image in todo:
        blocker = sidecar_blocker(image, roots, job.existing)
        if image in second_claims and blocker != KEEP:  # written, it would replace the other's caption
            blocker = (f"{sidecar_path(image)} is the caption file of {second_claims[image]} too (one caption "
                       "file per name); rename one of the two images, or caption this one with --format jsonl")
        if blocker is None:
            go.append(image)
        elif blocker == KEEP:
            summary.kept += 1
        else:
            failures.append({"image": image, "error": blocker})
    errors.append(failures)
    summary.failed += len(failures)
    return go


def _caption_all(captioner: Any, todo: list[str], job: CaptionJob, records: RecordFile, errors: RecordFile,
                 summary: CaptionSummary, show_progress: bool) -> None:
    from lorakit.api import rate_progress

    scores: list[float] = []
    with rate_progress("caption", len(todo), unit="images", enabled=show_progress) as advance:
        for paths, pixels, failures in _decoded_batches(todo, captioner.image_processor, job, records.path):
            errors.append([{"image": path, "error": reason} for path, reason in failures])
            summary.failed += len(failures)
            done = captioner.caption(paths, pixels) if paths else []
            _record(done, job, records)
            scores += [r["clip_score"] for r in done if r.get("clip_score") is not None]
            summary.done += len(done)
            summary.cut += sum(r["finish_reason"] == "length" for r in done)
            advance(len(paths) + len(failures))
    if scores:
        summary.clip_mean = sum(scores) / len(scores)


def _record(done: list[dict[str, Any]], job: CaptionJob, records: RecordFile) -> None:
    """Caption files first, then the ledger: what a crash cuts short between
    the two is captioned again by ``--resume`` (and not appended twice)."""
    written = []
    try:
        for record in done:
            if job.format == "sidecar":
                write_sidecar(record["image"], record["caption"], job.existing)
            written.append(record)
    finally:
        records.append(written)


# -- decoding workers ----------------------------------------------------------


def _decoded_batches(paths: list[str], image_processor: Any, job: CaptionJob, out: Path) -> Iterator[tuple]:
    """``loading.image_batches``, where whatever stops a worker ends the run with one error."""
    batches = image_batches(paths, image_processor, job.batch_size, job.workers)
    while True:
        try:
            batch = next(batches)
        except StopIteration:
            return
        except Exception as exc:  # whatever a worker raised, or its death or silence: the run cannot go on
            raise _worker_failure(exc, out) from None
        yield batch


def _worker_failure(exc: Exception, out: Path) -> LorakitError:
    """One line for the user out of what the DataLoader raised (a worker's traceback, its exit, a timeout)."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    reason = lines[-1] if lines else type(exc).__name__
    if reason.startswith("DataLoader timed out"):
        reason = f"no image came from the decoding workers for {loading.WORKER_TIMEOUT_S} s"
    reason = reason.replace("DataLoader worker", "a decoding worker").split(". Details are lost")[0]
    disk = getattr(exc, "errno", None) in (errno.EFBIG, errno.ENOSPC, errno.EDQUOT) or any(
        text in reason for text in ("File too large", "No space left", "quota exceeded"))
    hint = (" (a file-size limit or a full disk: workers hand images over through shared memory in /dev/shm;"
            " raise `ulimit -f`, free space there, or pass --workers 0)") if disk else ""
    error = OutputError if disk else DataError
    return error(f"image decoding stopped: {reason}{hint}. The captions written so far are kept whole in {out}: "
                 "run the same command with --resume to caption the rest")


# -- several processes -------------------------------------------------------------


def shard_path(out: Path, rank: int, world: int) -> Path:
    return out.with_name(f"{out.stem}.shard{rank}-of-{world}{out.suffix}")


def _shards(out: Path) -> list[Path]:
    """The shards next to ``out`` of a run with any number of processes (one that crashed may have had another)."""
    pattern = re.compile(re.escape(out.stem) + r"\.shard\d+-of-\d+" + re.escape(out.suffix))
    candidates = out.parent.glob(glob.escape(out.stem) + ".shard*") if out.parent.is_dir() else []
    return sorted(path for path in candidates if pattern.fullmatch(path.name))


def _read_whole(path: Path, kind: str) -> list[dict[str, Any]]:
    """The records of ``path`` without its torn last line, if any (read only: other processes read it too)."""
    data = path.read_bytes()
    return parse_records(path, data[: data.rfind(b"\n") + 1], kind)


def _done_everywhere(out: Path, fmt: str) -> set[str]:
    """Images recorded in the merged output or in any shard."""
    done: set[str] = set()
    for path in (out, *_shards(out)):
        if path.exists():
            done.update(record["image"] for record in _read_whole(path, _kind(fmt)))
    return done


def merge_shards(out: Path, fmt: str) -> None:
    """Fold every shard (and its errors) into ``out``, each image once, then drop the shards."""
    for shard in _shards(out):
        for source, target, kind in ((shard, out, _kind(fmt)), (errors_path(shard), errors_path(out), "jsonl")):
            if source.exists():
                _append_new(source, target, kind)
                source.unlink()


def _append_new(source: Path, target: Path, kind: str) -> None:
    import json

    existing = RecordFile(target, resume=True, kind=kind)
    try:
        new = [r for r in _read_whole(source, kind) if r["image"] not in existing.done or "error" in r]
        if kind == "csv":
            for row in new:
                for key in ("adapters", "generation"):
                    row[key] = json.loads(row[key]) if row.get(key) else None
        existing.append(new)
    finally:
        existing.close()
