"""DICOM images (X-ray, CT, MR, ultrasound...) as Pillow reads other formats.

Registered with Pillow (``enable_dicom``) like pillow-heif's HEIC opener, so
every path that opens an image (data checks, training, batch captioning,
uploads to the server) reads a ``.dcm`` file, told by its bytes (``DICM`` at
offset 128, where every DICOM Part 10 file has it), through pydicom.

The pixels become the 8-bit picture a radiology viewer shows at first: the
modality LUT (rescale slope and intercept: Hounsfield units for CT), then
the file's own window (Window Center / Width, or its VOI LUT), or the full
range of the stored values where it has none; MONOCHROME1 (bright = low) is
inverted; colour images (RGB, YBR, palette) become RGB. A multi-frame file
gives its first frame, as a GIF or TIFF does. Compressed transfer syntaxes
decode where pydicom has a decoder: RLE always, JPEG baseline and JPEG 2000
through Pillow, JPEG lossless and JPEG-LS through python-gdcm (the caption
and vqa extras bring it); 12-bit JPEG needs pylibjpeg-libjpeg, and the error
says so.
"""

from __future__ import annotations

import functools
import importlib.util
from typing import Any

from PIL import Image, ImageFile

_MAGIC_OFFSET = 128
_MAGIC = b"DICM"
#: Pixel data elements: integer, float and double-float images.
_PIXEL_KEYWORDS = ("PixelData", "FloatPixelData", "DoubleFloatPixelData")
#: Suffixes of DICOM files; one so named is read even without the ``DICM``
#: marker (older files written without the Part 10 header).
DICOM_SUFFIXES = (".dcm", ".dicom")


def has_dicom_marker(path: Any) -> bool:
    """True when the file at ``path`` carries DICOM's ``DICM`` marker (PACS
    and CD exports name their images without a suffix: IM000001, or a UID)."""
    try:
        with open(path, "rb") as file:
            file.seek(_MAGIC_OFFSET)
            return file.read(len(_MAGIC)) == _MAGIC
    except OSError:
        return False


@functools.lru_cache(maxsize=None)
def enable_dicom() -> bool:
    """Let Pillow open DICOM files (registered once); False when pydicom is
    not installed."""
    try:
        import pydicom  # noqa: F401
    except ImportError:
        return False
    Image.register_open(DicomImageFile.format, DicomImageFile)
    Image.register_extensions(DicomImageFile.format, list(DICOM_SUFFIXES))
    return True


class UnusableDicom(OSError):
    """A DICOM file that holds no usable image; the message says why and what to do."""


class DicomImageFile(ImageFile.ImageFile):
    """A DICOM file's first frame as an 8-bit ``L`` or ``RGB`` image."""

    format = "DICOM"
    format_description = "DICOM medical image"

    def _open(self) -> None:
        assert self.fp is not None
        self.fp.seek(_MAGIC_OFFSET)
        marked = self.fp.read(len(_MAGIC)) == _MAGIC
        named = str(self.filename or "").lower().endswith(DICOM_SUFFIXES)
        if not (marked or named):
            raise SyntaxError("not a DICOM file")
        self.fp.seek(0)
        dataset = _read(self.fp, marked)
        if not any(keyword in dataset for keyword in _PIXEL_KEYWORDS):
            what = dataset.get("Modality") or getattr(dataset.get("SOPClassUID"), "name", "")
            raise UnusableDicom(f"a DICOM file without an image ({what or 'no pixel data'}: reports, plans and "
                                "structure sets hold no pixels); leave it out")
        try:
            self._size = (int(dataset.Columns), int(dataset.Rows))
            self.n_frames = int(dataset.get("NumberOfFrames") or 1)
        except (AttributeError, TypeError, ValueError):
            raise UnusableDicom("a DICOM image without valid Rows, Columns and Number of Frames; "
                                "re-export it") from None
        self._dataset = dataset
        self._mode = "L" if _is_grey(dataset) else "RGB"
        self.tile = []

    def load(self) -> Any:
        if self._im is None and getattr(self, "_dataset", None) is not None:
            try:
                pixels = picture(self._dataset)
            except Exception as exc:  # pydicom's decoders raise many types; this is "unreadable"
                raise UnusableDicom(_undecodable(self._dataset, exc)) from None
            self.load_prepare()
            self.frombytes(pixels.tobytes(), "raw", self.mode)
            self._dataset = None
        return super().load()


def _read(fp: Any, marked: bool) -> Any:
    """The dataset in ``fp``; a file without the ``DICM`` marker (read only
    when named ``.dcm``) must at least say what it is (SOP Class UID)."""
    import pydicom

    try:
        dataset = pydicom.dcmread(fp, force=not marked)
    except Exception as exc:  # pydicom reports a broken header in many types
        raise UnusableDicom(f"a broken DICOM header ({_short(exc)}); re-export it") from None
    if not marked and "SOPClassUID" not in dataset:
        raise UnusableDicom("named .dcm but not a DICOM file (no DICM marker, no SOP Class UID); rename or remove it")
    return dataset


def _is_grey(dataset: Any) -> bool:
    return str(dataset.get("PhotometricInterpretation", "MONOCHROME2")).startswith("MONOCHROME")


def _short(exc: Exception) -> str:
    """pydicom's message on one line, cut at 240 characters."""
    text = " ".join(line.strip() for line in str(exc).splitlines() if line.strip())
    return (text[:240] + "...") if len(text) > 240 else (text or type(exc).__name__)


def _undecodable(dataset: Any, exc: Exception) -> str:
    """Why the pixel data did not decode, with the fix."""
    meta = getattr(dataset, "file_meta", None)
    syntax = getattr(getattr(meta, "TransferSyntaxUID", None), "name", "")
    message = f"its DICOM pixel data{f' ({syntax})' if syntax else ''} cannot be decoded"
    if "missing dependencies" not in str(exc) and "does not support" not in str(exc):
        return f"{message} ({_short(exc)}); re-export it"
    if importlib.util.find_spec("gdcm") is None:
        return f"{message}: pip install python-gdcm (lorakit[caption] and lorakit[vqa] bring it)"
    return f"{message}: pip install pylibjpeg pylibjpeg-libjpeg, which decodes what python-gdcm does not (12-bit JPEG)"


def picture(dataset: Any) -> Any:
    """The first frame of ``dataset`` as uint8: rows x columns (grey) or
    rows x columns x 3 (colour), as a viewer would show it."""
    import numpy as np
    from pydicom.pixels import apply_color_lut, apply_modality_lut

    dataset.pixel_array_options(index=0)  # decode the first frame only
    pixels = dataset.pixel_array
    if not _is_grey(dataset):
        if str(dataset.PhotometricInterpretation) == "PALETTE COLOR":
            pixels = apply_color_lut(pixels, dataset)
        return _to_uint8(pixels, _bits(pixels, dataset))
    values = apply_modality_lut(pixels, dataset).astype(np.float64)
    shown = _windowed(values, dataset)
    if str(dataset.PhotometricInterpretation) == "MONOCHROME1":
        shown = 1.0 - shown
    return np.round(shown * 255).astype(np.uint8)


def _windowed(values: Any, dataset: Any) -> Any:
    """``values`` (after the modality LUT) mapped to 0..1 by the file's
    window, its VOI LUT, or the range of the values themselves."""
    import numpy as np

    window = _window(dataset)
    if window is not None:
        center, width = window
        function = str(dataset.get("VOILUTFunction", "LINEAR")).upper()
        if function == "SIGMOID":
            return 1.0 / (1.0 + np.exp(-4.0 * (values - center) / width))
        if function != "LINEAR_EXACT":  # LINEAR, PS3.3 C.11.2.1.2.1
            center, width = center - 0.5, max(width - 1.0, 1e-6)
        return np.clip((values - center) / width + 0.5, 0.0, 1.0)
    if dataset.get("VOILUTSequence"):
        from pydicom.pixels import apply_voi_lut

        values = apply_voi_lut(values, dataset, prefer_lut=True).astype(np.float64)
    finite = values[np.isfinite(values)]
    low, high = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 0.0)
    if high <= low:
        return np.zeros_like(values)
    return np.clip(np.nan_to_num((values - low) / (high - low)), 0.0, 1.0)


def _window(dataset: Any) -> tuple[float, float] | None:
    """The first Window Center / Width pair, or None when there is none."""
    center, width = dataset.get("WindowCenter"), dataset.get("WindowWidth")
    if center is None or width is None or center == "" or width == "":
        return None
    first = [value[0] if hasattr(value, "__len__") and not isinstance(value, str) else value
             for value in (center, width)]
    try:
        center, width = float(first[0]), float(first[1])
    except (TypeError, ValueError):
        return None
    return (center, width) if width > 0 else None


def _bits(pixels: Any, dataset: Any) -> int:
    """The bit depth colour samples are scaled from."""
    if pixels.dtype.itemsize == 1:
        return 8
    if str(dataset.PhotometricInterpretation) == "PALETTE COLOR":
        return 16  # pydicom returns palette colours at the LUT's 16 bits
    return int(dataset.get("BitsStored") or 8 * pixels.dtype.itemsize)


def _to_uint8(pixels: Any, bits: int) -> Any:
    import numpy as np

    if bits <= 8:
        return pixels.astype(np.uint8)
    scaled = pixels.astype(np.float64) * 255.0 / (2 ** bits - 1)
    return np.round(np.clip(scaled, 0, 255)).astype(np.uint8)
