"""Files in a data folder: which count, where they may live, and the warning
for a file a reader skipped or altered. Shared by every plugin that reads a
folder of examples (images, audio clips...).

A training data folder is self-contained: nothing it names, by a metadata row
(``resolve_member``) or by a symlink (``list_files(contained=True)``), is read
from outside it, so it can be moved and shared, and trains on what it holds.
"""

from __future__ import annotations

import json
import os
import unicodedata
from pathlib import Path
from typing import Iterator

from lorakit.errors import DataError

#: Files a data folder may hold besides its data, ignored by readers
#: (DICOMDIR: the index of a DICOM export from a PACS or a CD)...
IGNORED_NAMES = ("readme", "license", "licence", "dicomdir")
#: ...when they are notes: ``license.png`` is an image like any other.
NOTE_SUFFIXES = ("", ".md", ".txt", ".rst")

_warned: set[str] = set()


def warn(message: str) -> None:
    """Tell the user about a file a reader skipped or altered: one yellow
    ``warning:`` line on the terminal (stderr), each message once per run
    however often the folder is read, and only from the main process of a
    multi-process run. ``message`` starts with the file's path."""
    if message in _warned or os.environ.get("RANK", "0") != "0":
        return
    _warned.add(message)
    from lorakit.progress import console, escape

    console.print(f"[yellow]warning:[/yellow] {escape(message)}", highlight=False, soft_wrap=True)


def is_ignored(path: Path) -> bool:
    """True for files a reader skips: hidden files and README/LICENSE notes."""
    note = path.stem.lower() in IGNORED_NAMES and path.suffix.lower() in NOTE_SUFFIXES
    return path.name.startswith(".") or note


def require_folder(folder: Path, what: str = "examples") -> Path:
    """``folder`` resolved, or ``DataError`` when it is missing or not a folder.
    ``what`` says what the folder should hold, for the message."""
    if not folder.exists():
        raise DataError(f"data folder {folder} does not exist; pass a folder of {what}")
    if not folder.is_dir():
        raise DataError(f"{folder} is a file, not a folder; pass the folder of {what} that holds it")
    return folder.resolve()


def list_files(folder: Path, contained: bool = False) -> list[Path]:
    """Every file under ``folder`` (recursively, sorted), skipping hidden
    folders and ignored files; a broken link, or a link to a folder (not
    followed), is skipped with a warning. ``contained`` (training data): a
    symlink resolving outside ``folder`` is a ``DataError`` naming it, as a
    metadata row naming a file outside is (``resolve_member``)."""
    files = []
    for path in sorted(folder.rglob("*")):
        relative = path.relative_to(folder)
        if any(part.startswith(".") for part in relative.parts[:-1]) or is_ignored(path):
            continue
        if path.is_symlink():
            if contained:
                inside(folder, path, f"{path}: a symlink to {os.readlink(path)}")
            if not path.exists():
                warn(f"{path}: skipped, a broken symlink (its target {os.readlink(path)} does not exist)")
            elif path.is_dir():
                warn(f"{path}: skipped, a symlink to a folder (not followed); copy the folder in instead")
        if path.is_file():
            files.append(path)
    return files


def inside(folder: Path, path: Path, what: str) -> Path:
    """``path`` with every symlink resolved, or ``DataError`` (``what``
    names the path for the message) when it leaves ``folder``: a data folder
    must be self-contained so it can be moved and shared, and reading a file
    outside it is reading what the user never meant to train on."""
    root = Path(folder).resolve()
    resolved = Path(path).resolve()
    if not resolved.is_relative_to(root):
        raise DataError(f"{what} points outside the data folder {root}; move the file into the folder")
    return resolved


def resolve_member(folder: Path, name: str, where: str) -> Path:
    """The file ``name`` (relative, as written in a metadata file) inside ``folder``.

    Raises ``DataError`` when ``name`` is absolute or climbs out of the folder
    (by ``..`` or through a symlink); ``where`` names the metadata file and
    line for the message.
    """
    candidate = Path(name)
    if candidate.is_absolute() or name.startswith(("/", "\\")):
        raise DataError(f"{where}: file_name {name!r} is an absolute path; write it relative to the data folder {folder}")
    if not (folder / candidate).exists():
        # "café" typed (composed) for a file macOS named with a combining accent, or the other way round.
        spelt = [form for form in (unicodedata.normalize(f, name) for f in ("NFC", "NFD")) if (folder / form).exists()]
        candidate = Path(spelt[0]) if spelt else candidate
    return inside(folder, folder / candidate, f"{where}: file_name {name!r}")


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
