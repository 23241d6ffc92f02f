"""Image files: which files count, whether they decode, and the one way to open them.

Shared by every vision plugin (captioning, VQA...) for training, evaluation
and batch work alike, so a model sees the same pixels everywhere: CMYK,
16-bit, float, palette and alpha images become clean RGB (alpha composited
on white, 16-bit mapped to 8 by its full range, EXIF orientation applied as
every viewer does), and DICOM scans the picture a viewer shows
(``lorakit.data.dicom``). ``check_image`` warns about an image with transparent pixels, the one
conversion that changes what the picture shows. Folder listing and path
checks are in ``lorakit.data.files``.

Every check raises ``DataError`` naming the file and the fix, so a run stops
before training instead of crashing in a DataLoader worker an hour later.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from lorakit.data.dicom import DICOM_SUFFIXES, UnusableDicom, enable_dicom, has_dicom_marker
from lorakit.data.files import warn
from lorakit.errors import DataError

#: Image file suffixes every vision plugin accepts. Pillow decodes them
#: (TIFF, GIF and DICOM: the first page or frame); HEIC/HEIF, the photos
#: iPhones take, through pillow-heif, and DICOM (X-ray, CT, MR...) through
#: pydicom (both in the caption and vqa extras).
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff", ".gif", ".avif", ".heic", ".heif",
                  *DICOM_SUFFIXES)
_HEIF_SUFFIXES = (".heic", ".heif")
#: Pillow's format names -> the suffix a file of that format is written with
#: (an upload, an image taken out of a dataset). MPO is a JPEG with more
#: pictures after the first (many phones' and cameras' photos, 3D pairs):
#: a JPEG reader sees, and Pillow opens, its first picture.
IMAGE_FORMATS = {"PNG": ".png", "JPEG": ".jpg", "MPO": ".jpg", "WEBP": ".webp", "BMP": ".bmp", "TIFF": ".tif",
                 "GIF": ".gif", "AVIF": ".avif", "HEIF": ".heic", "DICOM": ".dcm"}

# Decoding a thumbnail is enough to find a truncated file: JPEG decoders scale
# down in the DCT (``draft``), so checking a 12-megapixel photo costs ~1/64 of
# a full decode, and a few thousand images stay a matter of seconds.
_CHECK_SIZE = (64, 64)

#: Refuse images above this many pixels (decompression bombs, scans at 1200
#: dpi); ``LORAKIT_MAX_IMAGE_PIXELS`` raises (or lowers) it on purpose.
MAX_PIXELS = 100_000_000


def pixel_limit() -> int:
    """The pixel limit: ``$LORAKIT_MAX_IMAGE_PIXELS`` when set, else ``MAX_PIXELS``."""
    import os

    value = os.environ.get("LORAKIT_MAX_IMAGE_PIXELS", "").replace("_", "").strip()
    if not value:
        return MAX_PIXELS
    if not value.isdigit() or int(value) < 1:
        raise DataError(f"LORAKIT_MAX_IMAGE_PIXELS = {value!r} is invalid: give a whole number of pixels, "
                        f"e.g. {MAX_PIXELS}")
    return int(value)


class MissingDecoder(OSError):
    """An image format whose decoder is not installed (HEIC without pillow-heif)."""


def _open(path: str | Path) -> Any:
    """``Image.open``, which reads only the header: the caller checks the size
    against ``pixel_limit()`` before decoding, with a message of its own
    instead of Pillow's bomb warning or error."""
    from PIL import Image

    # Registered for every file, not only .heic ones: phones' photos are often
    # HEIC saved as .jpg, and Pillow tells formats by their bytes (DICOM too).
    if not enable_heif() and Path(path).suffix.lower() in _HEIF_SUFFIXES:
        raise MissingDecoder("HEIC/HEIF photos need pillow-heif: pip install pillow-heif (lorakit[caption] and "
                             "lorakit[vqa] bring it), or convert them to JPEG")
    if not enable_dicom() and Path(path).suffix.lower() in DICOM_SUFFIXES:
        raise MissingDecoder("DICOM images need pydicom: pip install pydicom (lorakit[caption] and "
                             "lorakit[vqa] bring it)")
    Image.MAX_IMAGE_PIXELS = None
    return Image.open(path)


@functools.lru_cache(maxsize=None)
def enable_heif() -> bool:
    """Let Pillow read HEIC/HEIF through pillow-heif (registered once); False
    when pillow-heif is not installed."""
    try:
        import pillow_heif
    except ImportError:
        return False
    pillow_heif.register_heif_opener()
    return True


def image_format(data: bytes, verify: bool = False) -> str:
    """Pillow's name for the format of the image file ``data`` (HEIC and
    DICOM included where their decoders are installed); Pillow's exceptions
    pass through. ``verify`` also checks the file's structure."""
    import io

    from PIL import Image

    enable_heif()
    enable_dicom()
    # Only the header is read: the size is judged by lorakit's own limit
    # (``check_image``), not by Pillow's bomb error, as ``_open`` does.
    Image.MAX_IMAGE_PIXELS = None
    with Image.open(io.BytesIO(data)) as image:
        if verify:
            image.verify()
        return image.format


def _too_large(width: int, height: int, limit: int) -> str:
    return (f"too large ({width}x{height} = {width * height:,} pixels, limit {limit:,}); "
            "downscale it, or raise the limit on purpose with LORAKIT_MAX_IMAGE_PIXELS")


def is_image(path: Path) -> bool:
    """True when ``path`` has a suffix in ``IMAGE_SUFFIXES`` (any case), or
    is a DICOM file named as PACS and CD exports name them: without a
    suffix (IM000001) or by a UID (1.2.840.113619.2.55.3), other than the
    export's index (DICOMDIR), which holds no image."""
    suffix = path.suffix.lower()
    if suffix and not suffix[1:].isdigit():
        return suffix in IMAGE_SUFFIXES
    return path.name.upper() != "DICOMDIR" and has_dicom_marker(path)


def image_stem(path: str | Path) -> Path:
    """``path`` without its image suffix: what a caption file beside it is
    named after (``a.png`` -> ``a``, then ``a.txt``). A DICOM file named by
    its UID (``1.2.840.113619.2.55.3``) or without a suffix is its whole
    name: ``1.2.840.113619.2.55.3.txt``, never a name its series shares."""
    path = Path(path)
    return path.with_suffix("") if path.suffix.lower() in IMAGE_SUFFIXES else path


def check_image(path: Path) -> None:
    """Raise ``DataError`` unless ``path`` is an image Pillow can fully decode
    within the pixel limit; warn (``lorakit.data.files.warn``) when it has
    transparent pixels, which the model will see composited on white."""
    limit = pixel_limit()
    try:
        with _open(path) as image:
            if image.size[0] * image.size[1] > limit:
                raise DataError(f"{path}: {_too_large(*image.size, limit)}")
            image.verify()  # structure and checksums (PNG CRCs), without decoding
        with _open(path) as image:
            image.draft("RGB", _CHECK_SIZE)
            image.load()  # decoding finds truncated data that verify() misses
            transparent = _transparent_share(image)
    except (MissingDecoder, UnusableDicom) as error:
        raise DataError(f"{path}: {error}") from None
    except (OSError, SyntaxError, ValueError) as error:
        # Pillow reports bad files as OSError (UnidentifiedImageError, truncation),
        # SyntaxError (broken PNG chunks) or ValueError (bad headers).
        raise DataError(f"{path}: not a readable image ({error}); re-export it or remove it from the data folder") from error
    if transparent:
        warn(f"{path}: {transparent:.0%} of its pixels are transparent and are composited on white (in training, "
             "evaluation and captioning alike); if white is the wrong background, flatten the image yourself")


def _has_alpha(image: Any) -> bool:
    return image.mode in ("RGBA", "LA", "PA", "La", "RGBa") or "transparency" in image.info


def _transparent_share(image: Any) -> float:
    """The share of pixels of a decoded image that are not fully opaque (0.0
    for an alpha channel that is opaque everywhere, as many exports have)."""
    if not _has_alpha(image):
        return 0.0
    import numpy as np

    alpha = np.asarray(image.convert("RGBA").getchannel("A"))
    share = float((alpha < 255).mean())
    return max(share, 0.01) if share else 0.0  # "0%" would read as "nothing to see"


@dataclass
class Opened:
    """An RGB image, or the reason the file could not be used."""

    path: str
    image: Any = None
    error: str | None = None


def open_rgb(path: str | Path, max_pixels: int | None = None) -> Opened:
    """Decode ``path`` to upright RGB; alpha is composited on white, 16-bit
    mapped to 8 (see ``to_rgb``)."""
    from PIL import ImageOps, UnidentifiedImageError

    path = str(path)
    limit = max_pixels or pixel_limit()
    try:
        if Path(path).stat().st_size == 0:
            return Opened(path, error="empty file (0 bytes)")
        with _open(path) as image:
            width, height = image.size
            if width * height > limit:
                return Opened(path, error=_too_large(width, height, limit))
            image.draft("RGB", (1024, 1024))  # JPEG: decode at a reduced size, much faster
            image.load()
            # A phone photo stored sideways with an EXIF "rotate" tag: upright, as the user sees it.
            return Opened(path, to_rgb(ImageOps.exif_transpose(image)))
    except (MissingDecoder, UnusableDicom) as exc:
        return Opened(path, error=str(exc))
    except UnidentifiedImageError:
        return Opened(path, error="not an image Pillow can read")
    except (OSError, SyntaxError, ValueError) as exc:
        return Opened(path, error=f"unreadable or truncated image ({exc})")


def to_rgb(image: Any) -> Any:
    """A decoded Pillow image as 8-bit RGB.

    16-bit greyscale (PNG, mode ``I;16``; ``I`` as Pillow holds 16-bit data)
    maps 65535 to 255, as 16-bit RGB PNGs already arrive from Pillow (8-bit,
    full range): ``convert("RGB")`` would clip every value above 255 to white.
    A dark image stays dark: the scale is the format's, not the image's peak.
    A float image (mode ``F``: science and medical TIFFs) has no format
    range: values within 0..1 (the usual convention) map to 0..255, others
    are stretched from their minimum to their maximum, as viewers show them
    (``convert("RGB")`` would clip 0..1 to black).
    """
    from PIL import Image

    if image.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        import numpy as np

        data = np.clip(np.asarray(image, dtype=np.float64), 0, 65535)
        image = Image.fromarray(np.round(data / 257).astype("uint8"), "L")
    elif image.mode == "F":
        image = Image.fromarray(_float_to_uint8(image), "L")
    if _has_alpha(image):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return image.convert("RGB")


def _float_to_uint8(image: Any) -> Any:
    import numpy as np

    data = np.asarray(image, dtype=np.float64)
    finite = data[np.isfinite(data)]
    low, high = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
    if low >= 0.0 and high <= 1.0:
        low, high = 0.0, 1.0
    scaled = (np.nan_to_num(data, nan=low, posinf=high, neginf=low) - low) / max(high - low, 1e-12)
    return np.round(np.clip(scaled, 0.0, 1.0) * 255).astype("uint8")


def load_images(paths: Sequence[str | Path]) -> list[Any]:
    """RGB images for training and evaluation; a file that cannot be used
    (changed since the data was checked) is a ``DataError`` naming it."""
    images = []
    for path in paths:
        opened = open_rgb(path)
        if opened.error:
            raise DataError(f"{path}: {opened.error}; re-export it or remove it from the data folder")
        images.append(opened.image)
    return images
