"""Fingerprints: which weights an adapter was trained on, which file made an output."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any


def fingerprint(model: Any) -> str:
    """A short sha256 over every weight of ``model`` (names, dtypes, shapes, bytes).

    Computed on the plain base before LoRA is injected; two bases with the same
    fingerprint give the adapter exactly the same weights to sit on.
    """
    import torch

    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        tensor = tensor.detach().to("cpu").contiguous()
        digest.update(f"{name}|{tensor.dtype}|{tuple(tensor.shape)}\n".encode())
        if tensor.numel():
            digest.update(tensor.view(-1).view(torch.uint8).numpy().tobytes())
    return "sha256:" + digest.hexdigest()[:32]


def file_fingerprint(path: Path) -> str:
    """A short sha256 of a file (e.g. an adapter's weights), for provenance."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return "sha256:" + digest.hexdigest()[:32]
