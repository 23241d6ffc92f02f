"""Files in a data folder: which count, where they may live. Shared by every
plugin that reads a folder of examples (images, audio clips...)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Iterator

from lorakit.errors import DataError

#: Files a data folder may hold besides its data, ignored by readers.
IGNORED_NAMES = ("readme", "license", "licence")


def is_ignored(path: Path) -> bool:
    """True for files a reader skips: hidden files and README/LICENSE notes."""
    return path.name.startswith(".") or path.stem.lower() in IGNORED_NAMES


def require_folder(folder: Path, what: str = "examples") -> Path:
    """``folder`` resolved, or ``DataError`` when it is missing or not a folder.
    ``what`` says what the folder should hold, for the message."""
    if not folder.exists():
        raise DataError(f"data folder {folder} does not exist; pass a folder of {what}")
    if not folder.is_dir():
        raise DataError(f"{folder} is a file, not a folder; pass the folder of {what} that holds it")
    return folder.resolve()


def list_files(folder: Path) -> list[Path]:
    """Every file under ``folder`` (recursively, sorted), skipping hidden
    folders and ignored files."""
    files = []
    for path in sorted(folder.rglob("*")):
        relative = path.relative_to(folder)
        if any(part.startswith(".") for part in relative.parts[:-1]) or not path.is_file():
            continue
        if not is_ignored(path):
            files.append(path)
    return files


def resolve_member(folder: Path, name: str, where: str) -> Path:
    """The file ``name`` (relative, as written in a metadata file) inside ``folder``.

    Raises ``DataError`` when ``name`` is absolute or climbs out of the folder:
    a data folder must be self-contained so it can be moved and shared.
    ``where`` names the metadata file and line for the message.
    """
    candidate = Path(name)
    if candidate.is_absolute() or name.startswith(("/", "\\")):
        raise DataError(f"{where}: file_name {name!r} is an absolute path; write it relative to the data folder {folder}")
    resolved = (folder / candidate).resolve()
    if not resolved.is_relative_to(folder):
        raise DataError(f"{where}: file_name {name!r} points outside the data folder {folder}; move the file into the folder")
    return resolved


def read_text(path: Path) -> str:
    """The text of the UTF-8 file ``path`` (a leading BOM from Windows editors
    dropped); ``DataError`` naming the file, line and byte when it is not UTF-8.
    A missing file raises ``FileNotFoundError`` for the caller to word."""
    data = Path(path).read_bytes()
    try:
        return data.decode("utf-8").removeprefix("\ufeff")
    except UnicodeDecodeError as error:
        line = data.count(b"\n", 0, error.start) + 1
        raise DataError(f"{path}:{line}: not UTF-8 text (byte 0x{data[error.start]:02x} at offset {error.start}: "
                        f"{error.reason}); save it as UTF-8") from None


def read_jsonl(path: Path, example: str = '{"...": "..."}') -> Iterator[tuple[int, dict]]:
    """``(line number, object)`` of every non-empty line of a JSON-lines file;
    a line that is not a JSON object is a ``DataError`` naming file and line
    (``example`` shows the expected shape)."""
    try:
        text = read_text(path)
    except FileNotFoundError:
        raise DataError(f"{path} does not exist; pass a JSON-lines file of objects like {example}") from None
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as error:
            raise DataError(f"{path}:{number}: not valid JSON ({error.msg}); write one JSON object per line") from None
        if not isinstance(row, dict):
            raise DataError(f"{path}:{number}: expected a JSON object like {example}")
        yield number, row
