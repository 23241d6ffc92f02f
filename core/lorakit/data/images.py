"""Image files in a data folder: which files count, where they may live, and
whether they decode. Shared by every vision plugin (captioning, VQA...).

Every check raises ``DataError`` naming the file and the fix, so a run stops
before training instead of crashing in a DataLoader worker an hour later.
"""

from __future__ import annotations

from pathlib import Path

from lorakit.errors import DataError

#: Image file suffixes every vision plugin accepts (all decode with Pillow).
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp")

#: Files a data folder may hold besides its data, ignored by readers.
IGNORED_NAMES = ("readme", "license", "licence")

# Decoding a thumbnail is enough to find a truncated file: JPEG decoders scale
# down in the DCT (``draft``), so checking a 12-megapixel photo costs ~1/64 of
# a full decode, and a few thousand images stay a matter of seconds.
_CHECK_SIZE = (64, 64)


def is_image(path: Path) -> bool:
    """True when ``path`` has a suffix in ``IMAGE_SUFFIXES`` (any case)."""
    return path.suffix.lower() in IMAGE_SUFFIXES


def is_ignored(path: Path) -> bool:
    """True for files a reader skips: hidden files and README/LICENSE notes."""
    return path.name.startswith(".") or path.stem.lower() in IGNORED_NAMES


def require_folder(folder: Path) -> Path:
    """``folder`` resolved, or ``DataError`` when it is missing or not a folder."""
    if not folder.exists():
        raise DataError(f"data folder {folder} does not exist; pass --data a folder of images and their captions")
    if not folder.is_dir():
        raise DataError(f"{folder} is a file, not a folder; pass --data the folder that holds it")
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
        raise DataError(f"{where}: file_name {name!r} points outside the data folder {folder}; move the image into the folder")
    return resolved


def check_image(path: Path) -> None:
    """Raise ``DataError`` unless ``path`` is an image Pillow can fully decode."""
    from PIL import Image

    try:
        with Image.open(path) as image:
            image.verify()  # structure and checksums (PNG CRCs), without decoding
        with Image.open(path) as image:
            image.draft("RGB", _CHECK_SIZE)
            image.load()  # decoding finds truncated data that verify() misses
    except (OSError, SyntaxError, ValueError) as error:
        # Pillow reports bad files as OSError (UnidentifiedImageError, truncation),
        # SyntaxError (broken PNG chunks) or ValueError (bad headers).
        raise DataError(f"{path}: not a readable image ({error}); re-export it or remove it from the data folder") from error
