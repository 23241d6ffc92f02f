"""Decoding and resizing images in DataLoader worker processes, overlapped
with generation in the main process. A bad file becomes a failure record,
never an exception. Files are opened by ``lorakit.api.open_rgb``, the loader
training and evaluation use too, so an adapter captions the pixels it was
trained on."""

from __future__ import annotations

from typing import Any, Iterator

from lorakit.api import open_rgb


class ImageFiles:
    """A map-style dataset: path -> (path, pixel tensor or None, error or None)."""

    def __init__(self, paths: list[str], image_processor: Any):
        self.paths, self.image_processor = paths, image_processor

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> tuple[str, Any, str | None]:
        opened = open_rgb(self.paths[index])
        if opened.error:
            return opened.path, None, opened.error
        try:
            pixels = self.image_processor(images=[opened.image], return_tensors="pt")["pixel_values"][0]
        except (ValueError, OSError) as exc:
            return opened.path, None, f"cannot be preprocessed ({exc})"
        return opened.path, pixels, None


def _collate(items: list[tuple[str, Any, str | None]]) -> tuple[list[str], Any, list[tuple[str, str]]]:
    import torch

    good = [(path, pixels) for path, pixels, error in items if error is None]
    failures = [(path, error) for path, _, error in items if error is not None]
    pixels = torch.stack([p for _, p in good]) if good else None
    return [path for path, _ in good], pixels, failures


def image_batches(paths: list[str], image_processor: Any, batch_size: int, workers: int) -> Iterator[tuple]:
    """Yield ``(paths, pixel batch, [(path, error)...])`` in order."""
    import torch
    from torch.utils.data import DataLoader

    loader = DataLoader(ImageFiles(paths, image_processor), batch_size=batch_size, shuffle=False,
                        num_workers=workers, collate_fn=_collate, pin_memory=torch.cuda.is_available(),
                        prefetch_factor=4 if workers else None, persistent_workers=False)
    yield from loader
