"""Tiny image files for the caption tests."""

from pathlib import Path


def write_png(path: Path, color=(200, 30, 30), size=(16, 16)) -> Path:
    """A small solid-colour PNG at ``path``."""
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, color).save(path)
    return path
