"""``lorakit voice-import``: a Hugging Face speech dataset as a speaker folder."""

from __future__ import annotations

from pathlib import Path

import click

from lorakit.api import console, import_options


@click.command("voice-import")
@import_options("Speaker folder to write (recordings + metadata.csv).")
@click.option("--audio-column", help="Column of the recordings (default: the dataset's one Audio column).")
@click.option("--text-column", help="Column of the transcripts (default: the first of text, normalized_text, "
                                    "sentence, transcription, transcript, raw_text).")
def voice_import(dataset: str, out: str, split: str, audio_column: str | None, text_column: str | None,
                 where: tuple[str, ...], limit: int | None, overwrite: bool, quiet: bool) -> None:
    """Write a Hugging Face speech dataset on disk (DATASET: its folder as
    downloaded from the Hub, with .parquet files, or saved with save_to_disk;
    or one .parquet file) as a speaker folder: its recordings and their
    transcripts in metadata.csv, for lorakit run voice-clone --speaker OUT."""
    from lorakit_voice.hf_import import import_speaker

    summary = import_speaker(Path(dataset), Path(out), split, audio_column, text_column, limit, overwrite,
                             show_progress=not quiet, where=where)
    console.print(f"{summary.files} recordings with their transcripts written to {summary.out}"
                  f"{summary.skipped_note()}", highlight=False)
