"""``lorakit music-import``: a Hugging Face music dataset as a music folder."""

from __future__ import annotations

from pathlib import Path

import click

from lorakit.api import console, import_options


@click.command("music-import")
@import_options("Music folder to write (tracks + metadata.jsonl).")
@click.option("--audio-column", help="Column of the tracks (default: the dataset's one Audio column).")
@click.option("--text-column", help="Column of the descriptions (default: the first of text, caption, "
                                    "description, prompt, tags, genre).")
def music_import(dataset: str, out: str, audio_column: str | None, text_column: str | None, split: str,
                 where: tuple[str, ...], limit: int | None, overwrite: bool, quiet: bool) -> None:
    """Write a Hugging Face music dataset on disk (DATASET: its folder as
    downloaded from the Hub, with .parquet files, or saved with save_to_disk;
    or one .parquet file) as a music folder: its tracks and their
    descriptions in metadata.jsonl (tracks alone when it has no description
    column), for lorakit run music-style --data OUT."""
    from lorakit_music.data import METADATA
    from lorakit_music.hf_import import DESCRIPTION_COLUMNS, import_tracks

    summary = import_tracks(Path(dataset), Path(out), split, audio_column, text_column, limit, overwrite,
                            show_progress=not quiet, where=where)
    if (summary.out / METADATA).is_file():
        console.print(f"{summary.records} tracks with their descriptions written to {summary.out}"
                      f"{summary.skipped_note()}", highlight=False)
    else:
        console.print(f"{summary.files} tracks written to {summary.out}, without descriptions (the dataset has "
                      f"no {', '.join(DESCRIPTION_COLUMNS)} column; name another with --text-column): a run "
                      "describes them by --trigger WORD or the folder's name", highlight=False)
