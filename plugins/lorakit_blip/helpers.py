"""Helpers around a BLIP base (``Base.model`` a Hugging Face BLIP model,
``Base.processor`` its ``BlipProcessor``), shared by captioning and VQA."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator, Sequence

from lorakit.api import load_images

#: Images a generation batch holds: big enough to keep a CPU busy, small
#: enough for a 16 GB GPU with the full-size BLIP and beam search.
EVAL_BATCH_SIZE = 32

#: Seed of the noise image ``probe`` feeds the model.
PROBE_SEED = 1234


def bos_id(base: Any) -> int:
    """The id the text decoder starts generating from (BLIP's ``[DEC]``), which
    training puts in place of the tokenizer's ``[CLS]`` so both agree."""
    return base.model.config.text_config.bos_token_id


def max_length(base: Any) -> int:
    """Longest token sequence the text model has positions for (and the
    tokenizer accepts)."""
    positions = base.model.config.text_config.max_position_embeddings
    return min(positions, getattr(base.processor.tokenizer, "model_max_length", positions) or positions)


def image_size(base: Any) -> tuple[int, int]:
    """(height, width) of the pixel values the image processor makes."""
    size = base.processor.image_processor.size
    if isinstance(size, dict):
        return size["height"], size["width"]
    return size.height, size.width


def probe_pixels(base: Any) -> Any:
    """A fixed-seed noise image (1 x 3 x H x W, on CPU): the same input for
    every probe, built without user data."""
    import torch

    height, width = image_size(base)
    generator = torch.Generator().manual_seed(PROBE_SEED)
    return torch.randn(1, 3, height, width, generator=generator)


def pixel_values(processor: Any, images: Sequence[Any]) -> Any:
    """The image processor's tensor of RGB Pillow ``images``."""
    return processor.image_processor(images=list(images), return_tensors="pt")["pixel_values"]


def load_pixel_values(processor: Any, paths: Sequence[str | Path]) -> Any:
    """Pixel values of image files, decoded by ``lorakit.api.load_images``: the
    one loader, so training, evaluation and batch captioning see the same
    pixels (alpha composited on white, 16-bit scaled to 8)."""
    return pixel_values(processor, load_images(paths))


def batch_slices(count: int, size: int = EVAL_BATCH_SIZE) -> Iterator[slice]:
    """Slices that cut ``count`` items into generation batches of ``size``."""
    for start in range(0, count, size):
        yield slice(start, start + size)
