"""Image files in a data folder: which files count and whether they decode.
Shared by every vision plugin (captioning, VQA...); folder listing and path
checks are in ``lorakit.data.files``.

Every check raises ``DataError`` naming the file and the fix, so a run stops
before training instead of crashing in a DataLoader worker an hour later.
"""

from __future__ import annotations

from pathlib import Path

from lorakit.errors import DataError

#: Image file suffixes every vision plugin accepts (all decode with Pillow).
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp")

# Decoding a thumbnail is enough to find a truncated file: JPEG decoders scale
# down in the DCT (``draft``), so checking a 12-megapixel photo costs ~1/64 of
# a full decode, and a few thousand images stay a matter of seconds.
_CHECK_SIZE = (64, 64)


def is_image(path: Path) -> bool:
    """True when ``path`` has a suffix in ``IMAGE_SUFFIXES`` (any case)."""
    return path.suffix.lower() in IMAGE_SUFFIXES


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
