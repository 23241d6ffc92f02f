"""Reading and validating a caption data folder.

Three layouts are read, checked in this order:

* ``metadata.jsonl`` (Hugging Face imagefolder): one JSON object a line,
  ``{"file_name": "cat.png", "text": "a cat on a sofa"}``;
* ``metadata.csv``: the same two columns, with a header row;
* sidecar captions (kohya / Stable Diffusion convention): ``cat.png`` next to
  ``cat.txt`` holding its caption. As in kohya's scripts, every image takes
  the caption of its own stem: ``cat.png`` and ``cat.jpg`` both train on
  ``cat.txt``, with a warning naming both (most often a duplicate export).

An image may have several captions (several metadata rows); each becomes one
example and the evaluation scores against all of them. Every problem raises
``DataError`` naming the file (and line) and the fix.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path

from lorakit.api import (IMAGE_SUFFIXES, DataError, check_image, image_stem, is_image, list_files, read_jsonl,
                         read_text, require_folder, resolve_member, warn)

METADATA_FILES = ("metadata.jsonl", "metadata.csv")
_SUPPORTED = ", ".join(IMAGE_SUFFIXES)
_EXAMPLE = '{"file_name": "a.png", "text": "..."}'


@dataclass(frozen=True)
class CaptionExample:
    """One image and one of its captions. ``image`` is an absolute path, so
    examples pickle into DataLoader workers and survive a change of folder.
    ``triggered`` is False for the base's old-domain (retain) examples, which
    must not be tied to the adapter's trigger word."""

    image: str
    text: str
    triggered: bool = True

    @property
    def group(self) -> str:
        """The captions of one image stay in one split: held-out images are unseen."""
        return self.image


def read_caption_folder(folder: Path, check_images: bool = True) -> list[CaptionExample]:
    """Read every (image, caption) pair under ``folder``, validated.

    ``check_images`` decodes every image once to catch corrupt or truncated
    files before training (a few ms an image).
    """
    folder = require_folder(Path(folder), "images and their captions")
    files = list_files(folder, contained=True)  # a symlink out of the folder is refused, in either layout
    metadata = [folder / name for name in METADATA_FILES if (folder / name).is_file()]
    if len(metadata) > 1:
        raise DataError(f"{folder} has both metadata.jsonl and metadata.csv; keep one of them")
    if metadata:
        pairs = _read_metadata(folder, metadata[0])
        _check_all_captioned(files, pairs, metadata[0])
    else:
        pairs = _read_sidecars(folder, files)
    if not pairs:
        raise DataError(
            f"{folder} holds no captioned images; add images ({_SUPPORTED}) with a metadata.jsonl "
            "(file_name, text) or a .txt caption next to each image"
        )
    if check_images:
        for image in sorted({path for path, _ in pairs}):
            check_image(image)
    return [CaptionExample(str(path), text) for path, text in pairs]


def _read_metadata(folder: Path, metadata: Path) -> list[tuple[Path, str]]:
    rows = read_jsonl(metadata, _EXAMPLE) if metadata.suffix == ".jsonl" else _csv_rows(metadata)
    return [_checked_row(folder, f"{metadata}:{line}", row) for line, row in rows]


def _csv_rows(path: Path) -> list[tuple[int, dict]]:
    """The rows of a ``metadata.csv`` with the line each starts on (the header is
    line 1, as an editor shows). Separated by commas, or by semicolons or tabs
    as spreadsheets save CSV in many locales; a quoted caption may hold a line
    break (a spreadsheet cell with several lines)."""
    text = read_text(path)
    header = text.split("\n", 1)[0]
    delimiter = next((d for d in (",", ";", "\t") if d in header), ",")
    reader = csv.DictReader(io.StringIO(text, newline=""), delimiter=delimiter)
    missing = {"file_name", "text"} - set(reader.fieldnames or ())
    if missing and "|" in header and "file_name" not in header:  # id|text lines: an LJSpeech voice folder
        raise DataError(f"{path} holds LJSpeech transcripts (id|text), not captions: this is a folder of voice "
                        "clips; caption data is images with a metadata.jsonl or metadata.csv (file_name,text)")
    if missing:
        raise DataError(f"{path}:1: header lacks column(s) {', '.join(sorted(missing))} (it reads "
                        f"{header.strip()!r}); the header must name file_name and text")
    rows, start = [], reader.line_num + 1
    for row in reader:
        rows.append((start, row))
        start = reader.line_num + 1
    return rows


def _checked_row(folder: Path, where: str, row: dict) -> tuple[Path, str]:
    name, text = row.get("file_name"), row.get("text")
    if not isinstance(name, str) or not name.strip():
        raise DataError(f"{where}: missing file_name; give the image's path relative to the data folder")
    if not isinstance(text, str) or not text.strip():
        raise DataError(f"{where}: empty caption for {name!r}; write its caption in the text field or remove the row")
    path = resolve_member(folder, name.strip(), where)
    if not is_image(path):
        raise DataError(f"{where}: {name!r} is not a supported image type; use one of {_SUPPORTED}")
    if not path.is_file():
        raise DataError(f"{where}: caption without image: {path} does not exist; add the image or remove the row")
    return path, " ".join(text.split())


def _check_all_captioned(files: list[Path], pairs: list[tuple[Path, str]], metadata: Path) -> None:
    captioned = {path for path, _ in pairs}
    for path in files:
        if path.name in METADATA_FILES:
            continue
        if not is_image(path):
            raise DataError(
                f"{path}: unsupported file type; data folders hold images ({_SUPPORTED}) and {metadata.name}; move it out"
            )
        if path.resolve() not in captioned:
            raise DataError(f"{path}: image without caption; add a row for it to {metadata} or remove the image")


def _read_sidecars(folder: Path, files: list[Path]) -> list[tuple[Path, str]]:
    images = _by_stem((path for path in files if is_image(path)), image_stem)
    captions = _by_stem((path for path in files if path.suffix.lower() == ".txt"), lambda path: path.with_suffix(""))
    for path in files:
        if not is_image(path) and path.suffix.lower() != ".txt":
            raise DataError(f"{path}: unsupported file type; use images ({_SUPPORTED}) with .txt captions, or move it out")
    for stem, texts in captions.items():
        if len(texts) > 1:
            raise DataError(f"{' and '.join(map(str, texts))}: two captions for {stem.name}; keep one of them")
        if stem not in images:
            raise DataError(f"{texts[0]}: caption without image; add the image next to it or delete the .txt file")
    pairs = []
    for stem, group in sorted(images.items()):
        if stem not in captions:
            raise DataError(
                f"{group[0]}: image without caption; write its caption into {stem.name}.txt next to it, "
                f"or add a metadata.jsonl to {folder}"
            )
        caption = captions[stem][0]
        text = " ".join(read_text(caption).split())
        if not text:
            raise DataError(f"{caption}: empty caption; write the caption of {group[0].name} into it")
        if len(group) > 1:
            warn(f"{' and '.join(map(str, group))} share the caption {caption.name}: each is trained on it. "
                  "If one is a duplicate export, remove it; if they differ, give each a caption of its own stem")
        pairs += [(image.resolve(), text) for image in group]
    return pairs


def _by_stem(paths, stem) -> dict[Path, list[Path]]:
    groups: dict[Path, list[Path]] = {}
    for path in paths:
        groups.setdefault(stem(path), []).append(path)
    return groups
