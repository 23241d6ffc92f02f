"""``lorakit caption-import``: a Hugging Face captioning dataset on disk (its
parquet files as downloaded from the Hub, or ``save_to_disk``'s folder) as a
caption folder: the images and ``metadata.jsonl``.

    lorakit caption-import flickr30k/ --out data/flickr --split test

The caption column is the one named ``--text-column``, or the first of
``CAPTION_COLUMNS`` the dataset has; a row's caption may be one text or a
list of them (each becomes a row of metadata.jsonl, as a folder with
several captions per image has), or a list of ``{"raw": ...}`` sentences as
COCO's Karpathy splits have them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lorakit.api import ImportSummary, choose_column, choose_media_column, import_split, open_split

#: Caption columns tried in turn when --text-column is not given.
CAPTION_COLUMNS = ("text", "caption", "captions", "sentences", "sentence", "description", "raw")
#: What a row without a caption is counted as.
NO_CAPTION = "rows without a caption"


def import_captions(source: Path, out: Path, split: str = "train", image_column: str | None = None,
                    text_column: str | None = None, limit: int | None = None, overwrite: bool = False,
                    show_progress: bool = True, where: tuple[str, ...] = ()) -> ImportSummary:
    found = open_split(source, split)
    image = choose_media_column(found, image_column)
    text = choose_column(found, text_column, CAPTION_COLUMNS, "--text-column", "caption")

    def records(row: dict[str, Any], name: str) -> list[dict[str, str]] | str:
        captions = _texts(row[text])
        return [{"file_name": name, "text": caption} for caption in captions] or NO_CAPTION

    return import_split(found, out, image, [text], "metadata.jsonl", records, limit=limit, overwrite=overwrite,
                        show_progress=show_progress, where=where)


def _texts(value: Any) -> list[str]:
    """The non-empty captions a cell holds: a text, a list of texts, or of
    ``{"raw": ...}`` sentences (whitespace collapsed)."""
    values = value if isinstance(value, list) else [value]
    texts = []
    for item in values:
        if isinstance(item, dict):
            item = next((item[key] for key in ("raw", "text", "caption") if isinstance(item.get(key), str)), None)
        if isinstance(item, str) and item.strip():
            texts.append(" ".join(item.split()))
    return texts
