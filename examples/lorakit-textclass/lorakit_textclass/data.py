"""Reading a text-classification folder: ``data.jsonl`` or ``data.csv``.

JSONL lines are ``{"text": "...", "label": "positive"}``; a CSV has a header
with ``text`` (or ``review``) and ``label`` (or ``sentiment``), as IMDb-style
datasets do.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

from lorakit.api import DataError, read_jsonl, read_text

TEXT_COLUMNS = ("text", "review")
LABEL_COLUMNS = ("label", "sentiment")


@dataclass(frozen=True)
class TextExample:
    """One review; ``label`` also makes lorakit's held-out split stratified by class."""

    text: str
    label: str


def read_folder(folder: Path, labels: list[str] | None = None) -> list[TextExample]:
    """Validated examples of ``folder``; ``labels`` (the base's) are the only allowed ones."""
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(f"{folder} is not a folder; pass --data a folder holding data.jsonl or data.csv")
    files = [folder / name for name in ("data.jsonl", "data.csv") if (folder / name).is_file()]
    if not files:
        raise DataError(f"{folder} holds neither data.jsonl nor data.csv; add one (text, label per example)")
    path = files[0]
    rows = _jsonl(path) if path.suffix == ".jsonl" else _csv(path)
    examples = []
    for where, text, label in rows:
        if not isinstance(text, str) or not text.strip():
            raise DataError(f"{where}: empty text; write the example's text or remove the line")
        if labels is not None and label not in labels:
            raise DataError(f"{where}: label {label!r} is not one the base knows ({', '.join(labels)})")
        examples.append(TextExample(" ".join(text.split()), str(label)))
    if not examples:
        raise DataError(f"{path} holds no examples")
    return examples


def _jsonl(path: Path):
    for number, row in read_jsonl(path, '{"text": "...", "label": "positive"}'):
        yield f"{path}:{number}", _field(row, TEXT_COLUMNS), _field(row, LABEL_COLUMNS)


def _csv(path: Path):
    reader = csv.DictReader(read_text(path).splitlines())
    columns = set(reader.fieldnames or ())
    if not columns & set(TEXT_COLUMNS) or not columns & set(LABEL_COLUMNS):
        raise DataError(f"{path}:1: the header must name a text column ({'/'.join(TEXT_COLUMNS)}) "
                        f"and a label column ({'/'.join(LABEL_COLUMNS)})")
    for number, row in enumerate(reader, start=2):
        yield f"{path}:{number}", _field(row, TEXT_COLUMNS), _field(row, LABEL_COLUMNS)


def _field(row: dict, names: tuple[str, ...]):
    for name in names:
        if name in row:
            return row[name]
    return None
