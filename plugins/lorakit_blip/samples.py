"""Samples of the image tasks for a run's report: each held-out picture,
small, beside what the model said about it (``NN.jpg`` + ``NN.txt``, which
``lorakit report`` shows as one sample)."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

#: The longest side of a sample picture: enough to tell what is in it, small
#: enough that a report with every sample embedded stays a file to mail.
PICTURE_SIDE = 256


def write_picture_samples(folder: Path, images: Sequence[str], texts: Sequence[str]) -> None:
    """``NN.jpg`` (the image, at most PICTURE_SIDE pixels a side) and ``NN.txt``
    (its text) for each image, numbered from 01."""
    from lorakit.api import open_rgb

    folder.mkdir(parents=True, exist_ok=True)
    for number, (image, text) in enumerate(zip(images, texts), start=1):
        picture = open_rgb(image).image  # read once already, when the data was loaded
        if picture is not None:
            picture.thumbnail((PICTURE_SIDE, PICTURE_SIDE))
            picture.save(folder / f"{number:02d}.jpg", quality=85)
        (folder / f"{number:02d}.txt").write_text(text + "\n", encoding="utf-8")
