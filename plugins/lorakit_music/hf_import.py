"""``lorakit music-import``: a Hugging Face music dataset on disk (its parquet
files as downloaded from the Hub, or ``save_to_disk``'s folder) as a music
folder: the tracks as stored and ``metadata.jsonl`` of their descriptions.

    lorakit music-import songs/ --out data/songs --text-column caption
    lorakit run music-style --data data/songs

The tracks are the dataset's ``Audio`` column; the description column is
``--text-column`` or the first of ``DESCRIPTION_COLUMNS``. A dataset with
none of them (a collection of tracks alone) is written as its tracks alone,
which a run describes as it does any track without a description: by
``--trigger`` or the folder's name.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lorakit.api import ImportSummary, choose_column, choose_media_column, import_split, open_split
from lorakit_music.data import METADATA

#: Description columns tried in turn when --text-column is not given.
DESCRIPTION_COLUMNS = ("text", "caption", "description", "prompt", "tags", "genre")
NO_DESCRIPTION = "rows without a description"


def import_tracks(source: Path, out: Path, split: str = "train", audio_column: str | None = None,
                  text_column: str | None = None, limit: int | None = None, overwrite: bool = False,
                  show_progress: bool = True, where: tuple[str, ...] = ()) -> ImportSummary:
    found = open_split(source, split)
    audio = choose_media_column(found, audio_column, "Audio")
    if text_column is None and not any(name in found.features for name in DESCRIPTION_COLUMNS):
        return import_split(found, out, audio, [], None, lambda row, name: [name], limit=limit, overwrite=overwrite,
                            show_progress=show_progress, where=where, kind="Audio")
    text = choose_column(found, text_column, DESCRIPTION_COLUMNS, "--text-column", "description")

    def records(row: dict[str, Any], name: str) -> list[dict[str, str]] | str:
        described = row[text]
        if isinstance(described, list):  # tags
            described = ", ".join(str(tag) for tag in described if str(tag).strip())
        if not isinstance(described, str) or not described.strip():
            return NO_DESCRIPTION
        return [{"file_name": name, "text": " ".join(described.split())}]

    return import_split(found, out, audio, [text], METADATA, records, limit=limit, overwrite=overwrite,
                        show_progress=show_progress, where=where, kind="Audio")
