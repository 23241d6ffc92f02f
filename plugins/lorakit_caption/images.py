"""Opening user images robustly for batch captioning.

Real folders hold CMYK JPEGs, 16-bit PNGs, images with alpha, palettes,
truncated downloads and files that are not images at all. Each is either
turned into a clean RGB picture or refused with a reason a person can act on;
nothing here raises for a bad file.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

#: Refuse images above this many pixels (decompression bombs, scans at 1200 dpi).
MAX_PIXELS = 100_000_000


@dataclass
class Opened:
    """An RGB image, or the reason the file could not be used."""

    path: str
    image: Any = None
    error: str | None = None


def open_rgb(path: str | Path, max_pixels: int | None = None) -> Opened:
    """Decode ``path`` to RGB; alpha is composited on white, 16-bit scaled to 8."""
    from PIL import Image, UnidentifiedImageError

    path = str(path)
    max_pixels = max_pixels or MAX_PIXELS
    try:
        if Path(path).stat().st_size == 0:
            return Opened(path, error="empty file (0 bytes)")
        with Image.open(path) as image:
            width, height = image.size
            if width * height > max_pixels:
                return Opened(path, error=f"too large ({width}x{height} pixels, limit {max_pixels:,})")
            image.draft("RGB", (1024, 1024))  # JPEG: decode at a reduced size, much faster
            image.load()
            return Opened(path, to_rgb(image))
    except UnidentifiedImageError:
        return Opened(path, error="not an image Pillow can read")
    except Image.DecompressionBombError as exc:
        return Opened(path, error=f"too large ({exc})")
    except (OSError, SyntaxError, ValueError) as exc:
        return Opened(path, error=f"unreadable or truncated image ({exc})")


def to_rgb(image: Any) -> Any:
    from PIL import Image

    if image.mode in ("I;16", "I;16B", "I;16L", "I"):
        # 16/32-bit greyscale: scale to 8 bits instead of clipping to white.
        import numpy as np

        data = np.asarray(image, dtype=np.float64)
        peak = data.max() or 1.0
        image = Image.fromarray((data / peak * 255).astype("uint8"), "L")
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return image.convert("RGB")
