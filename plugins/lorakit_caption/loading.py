"""Decoding and resizing images in DataLoader worker processes, overlapped
with generation in the main process. A bad file becomes a failure record,
never an exception. Files are opened by ``lorakit.api.open_rgb``, the loader
training and evaluation use too, so an adapter captions the pixels it was
trained on."""

from __future__ import annotations

import os
import sys
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


#: Seconds the main process waits for the next decoded batch before it gives up on the workers.
WORKER_TIMEOUT_S = 300


def _collate(items: list[tuple[str, Any, str | None]]) -> tuple[list[str], Any, list[tuple[str, str]]]:
    """One batch; in a worker, the pixels are moved to shared memory here: when
    that fails (/dev/shm full, a file-size limit) the worker raises and the main
    process hears of it; failing later, in the queue's feeder thread, would only
    be printed, and the main process would wait forever."""
    import torch
    from torch.utils.data import get_worker_info

    good = [(path, pixels) for path, pixels, error in items if error is None]
    failures = [(path, error) for path, _, error in items if error is not None]
    pixels = torch.stack([p for _, p in good]) if good else None
    if pixels is not None and get_worker_info() is not None:
        pixels.share_memory_()
    return [path for path, _ in good], pixels, failures


def _worker_started(worker_id: int) -> None:
    """In each worker: a batch its queue cannot send ends the worker (the main
    process notices at once) instead of being printed and dropped."""
    import multiprocessing.queues

    def give_up(exc: Exception, obj: Any) -> None:
        print(f"decoding worker {worker_id} cannot hand over a batch ({type(exc).__name__}: {exc})",
              file=sys.stderr, flush=True)
        os._exit(1)

    multiprocessing.queues.Queue._on_queue_feeder_error = staticmethod(give_up)


def image_batches(paths: list[str], image_processor: Any, batch_size: int, workers: int) -> Iterator[tuple]:
    """Yield ``(paths, pixel batch, [(path, error)...])`` in order. Whatever
    stops a worker (an exception, its death, ``WORKER_TIMEOUT_S`` of silence)
    is raised here by the DataLoader."""
    import torch
    from torch.utils.data import DataLoader

    loader = DataLoader(ImageFiles(paths, image_processor), batch_size=batch_size, shuffle=False,
                        num_workers=workers, collate_fn=_collate, pin_memory=torch.cuda.is_available(),
                        prefetch_factor=4 if workers else None, persistent_workers=False,
                        timeout=WORKER_TIMEOUT_S if workers else 0,
                        worker_init_fn=_worker_started if workers else None)
    yield from loader
