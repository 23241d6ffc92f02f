"""``lorakit caption``: batch captioning, added to the CLI by this plugin."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from lorakit.api import ConfigError, OutputError, console, import_options, parse_adapter, warn
from lorakit_caption.limits import MAX_BEAMS, MAX_NEW_TOKENS


@click.command("caption")
@click.argument("images", nargs=-1, required=True, type=click.Path())
@click.option("--out", type=click.Path(), default="captions.jsonl", show_default=True,
              help="Captions file (jsonl or csv); for --format sidecar, the provenance ledger.")
@click.option("--format", "fmt", type=click.Choice(["jsonl", "csv", "sidecar"]),
              help="jsonl, csv or sidecar (image.txt files); default: csv for an --out ending in .csv, else jsonl.")
@click.option("--adapter", "adapters", multiple=True, metavar="RUN[:WEIGHT]", help="Adapter(s) to merge, with weights.")
@click.option("--base", help="Base model (default: the adapters' base, or demo).")
@click.option("--trigger", help="Trigger word the adapter was trained with (default: the adapter's); it prompts "
                                "generation, and sidecar files start with it.")
@click.option("--prompt", default="", help='Conditional captioning text, e.g. "a photo of".')
@click.option("--prefix", help='Text written before every caption (default: "TRIGGER, " in --format sidecar files '
                               'when there is a trigger, else none; --prefix "" for none).')
@click.option("--suffix", default="", help='Text written after every caption, e.g. ", studio photo".')
@click.option("--recursive", is_flag=True, help="Also caption images in subfolders.")
@click.option("--num-beams", default=1, show_default=True, type=click.IntRange(1, MAX_BEAMS))
@click.option("--max-new-tokens", default=30, show_default=True, type=click.IntRange(1, MAX_NEW_TOKENS))
@click.option("--batch-size", default=16, show_default=True, type=click.IntRange(min=1))
@click.option("--workers", default=2, show_default=True, type=click.IntRange(min=0), help="Image decoding processes.")
@click.option("--existing", type=click.Choice(["skip", "overwrite", "append", "prepend"]),
              help="--format sidecar, when image.txt is already there: keep it (skip, the default), replace it, "
                   "or add the new caption after / before its text, joined by ', '.")
@click.option("--resume", is_flag=True, help="Caption only the images missing from --out.")
@click.option("--rerank", type=click.Choice(["clip"]), help="Keep the candidate CLIP likes best.")
@click.option("--clip", help="open_clip model: NAME:PRETRAINED, NAME:/path/model.safetensors, a folder as the Hub "
              "holds one (open_clip_config.json, open_clip_model.safetensors), or demo (the default).")
@click.option("--candidates", default=4, show_default=True, type=click.IntRange(min=1),
              help="Candidates per image when re-ranking.")
@click.option("--ignore-base-mismatch", is_flag=True)
@click.option("--quiet", is_flag=True, help="No progress bar.")
def caption(images, out, fmt, adapters, base, trigger, prompt, prefix, suffix, recursive, num_beams, max_new_tokens, batch_size,
            workers, existing, resume, rerank, clip, candidates, ignore_base_mismatch, quiet):
    """Caption IMAGES (files or folders) with a base BLIP and adapters.

    \b
    lorakit caption photos/ --adapter runs/caption-1 --out captions.jsonl
    lorakit caption photos/ --adapter style:0.7 --adapter domain:0.5 --format sidecar --trigger sks
    """
    from lorakit_caption.batch import CaptionJob, run_caption_job

    fmt = _format(fmt, Path(out))
    if Path(out).is_dir():
        raise OutputError(f"--out {out} is a folder; name the captions file, e.g. --out {Path(out) / 'captions.jsonl'}")
    if existing and fmt != "sidecar":
        raise ConfigError(f"--existing {existing} is for --format sidecar (the image.txt files); {fmt} output "
                          "is one file, continued with --resume")
    job = CaptionJob(inputs=[Path(i) for i in images], out=Path(out), format=fmt,
                     adapters=[parse_adapter(a) for a in adapters], base=base, trigger=trigger, prompt=prompt,
                     prefix=prefix, suffix=suffix,
                     num_beams=num_beams, max_new_tokens=max_new_tokens, batch_size=batch_size, workers=workers,
                     resume=resume, recursive=recursive, rerank=rerank, clip=clip, candidates=candidates,
                     ignore_base_mismatch=ignore_base_mismatch, existing=existing or "skip")
    summary = run_caption_job(job, show_progress=not quiet)
    rate = summary.done / summary.seconds if summary.seconds else 0.0
    clip_text = f", mean CLIPScore {summary.clip_mean:.4f}" if summary.clip_mean is not None else ""
    who = f"process {summary.process}: " if summary.process else ""
    kept = f", kept {summary.kept} existing caption files (--existing skip)" if fmt == "sidecar" else ""
    console.print(f"{who}captioned {summary.done}, skipped {summary.skipped} (already done){kept}, "
                  f"failed {summary.failed} in {summary.seconds:.1f} s ({rate:.1f} images/s){clip_text}")
    console.print(f"captions: {summary.out}" + (f"; failures and why: {summary.errors}" if summary.failed else ""))
    if summary.cut:
        warn(f"{who}{summary.cut} of the {summary.done} captions ran to --max-new-tokens {max_new_tokens} and were "
             "cut there, before the model ended them; for whole captions, caption again with a larger "
             "--max-new-tokens (into another --out)")
    if summary.failed:
        sys.exit(3)


def _format(given: str | None, out: Path) -> str:
    """``--format``, or the one ``--out``'s suffix names; a file named for one format is not written in another."""
    named = {".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl"}.get(out.suffix.lower())
    if given is None:
        return named or "jsonl"
    written = "jsonl" if given == "sidecar" else given  # the sidecar ledger is JSON lines
    if named and named != written:
        what = "the sidecar ledger" if given == "sidecar" else f"--format {given}"
        raise ConfigError(f"{what} is {written.upper()}, but --out {out} is named .{out.suffix[1:]}; name it "
                          f"{out.with_suffix('.' + written)}" + ("" if given == "sidecar" else f" or pass --format {named}"))
    return given


@click.command("caption-import")
@import_options("Caption folder to write (images + metadata.jsonl).")
@click.option("--image-column", help="Column of the images (default: the dataset's one Image column).")
@click.option("--text-column", help="Column of the captions (default: the first of text, caption, captions, "
                                    "sentences, sentence, description, raw).")
def caption_import(dataset: str, out: str, split: str, image_column: str | None, text_column: str | None,
                   where: tuple[str, ...], limit: int | None, overwrite: bool, quiet: bool) -> None:
    """Write a Hugging Face captioning dataset on disk (DATASET: its folder as
    downloaded from the Hub, with .parquet files, or saved with save_to_disk;
    or one .parquet file) as a caption folder: its images and metadata.jsonl,
    for lorakit run caption --data OUT."""
    from lorakit_caption.hf_import import import_captions

    summary = import_captions(Path(dataset), Path(out), split, image_column, text_column, limit, overwrite,
                              show_progress=not quiet, where=where)
    console.print(f"{summary.records} captions of {summary.files} images written to {summary.out}"
                  f"{summary.skipped_note()}", highlight=False)
