"""``lorakit voice-import``: a Hugging Face speech dataset on disk (its parquet
files as downloaded from the Hub, or ``save_to_disk``'s folder) as a speaker
folder: the recordings and an LJSpeech ``metadata.csv`` of their transcripts.

    lorakit voice-import vctk/ --out clips/p225 --where speaker_id=p225
    lorakit run voice-clone --speaker clips/p225

The recordings are the dataset's ``Audio`` column, written as stored (wav,
flac, ogg, mp3); the transcript column is ``--text-column`` or the first of
``TEXT_COLUMNS``. ``--where`` picks one speaker of a multi-speaker dataset.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lorakit.api import TRANSCRIPTS_FILE, ImportSummary, choose_column, choose_media_column, import_split, open_split

#: Transcript columns tried in turn when --text-column is not given.
TEXT_COLUMNS = ("text", "normalized_text", "sentence", "transcription", "transcript", "raw_text")
NO_TEXT = "rows without a transcript"


def import_speaker(source: Path, out: Path, split: str = "train", audio_column: str | None = None,
                   text_column: str | None = None, limit: int | None = None, overwrite: bool = False,
                   show_progress: bool = True, where: tuple[str, ...] = ()) -> ImportSummary:
    found = open_split(source, split)
    audio = choose_media_column(found, audio_column, "Audio")
    text = choose_column(found, text_column, TEXT_COLUMNS, "--text-column", "transcript")

    def records(row: dict[str, Any], name: str) -> list[tuple[str, str]] | str:
        said = row[text]
        if not isinstance(said, str) or not said.strip():
            return NO_TEXT
        # metadata.csv separates its fields with "|": a transcript keeps none of its own
        return [(Path(name).stem, " ".join(said.replace("|", " ").split()))]

    return import_split(found, out, audio, [text], TRANSCRIPTS_FILE, records, limit=limit, overwrite=overwrite,
                        show_progress=show_progress, where=where, kind="Audio",
                        line=lambda record: f"{record[0]}|{record[1]}")
