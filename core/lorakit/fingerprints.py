"""Fingerprints: which weights an adapter was trained on, which file made an output."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

#: A folder with more files than this is not a model checkpoint: not cached.
MAX_FILES = 10_000


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


def base_fingerprint(base: Any, task_name: str) -> str:
    """``fingerprint(base.model)``, remembered per weights folder: hashing
    every weight of a large base takes seconds on every command, so the
    result is cached under the folder's path, each file's name, size and
    modification time, the task and the model class. A base without a
    folder (``Base.source``) is hashed every time."""
    folder = _weights_folder(base)
    key = _folder_key(folder, task_name, type(base.model).__name__) if folder is not None else None
    cache = _cache_file()
    known = _read_cache(cache) if key else {}
    if key in known:
        return known[key]
    value = fingerprint(base.model)
    if key:
        _remember(cache, key, value)
    return value


def _weights_folder(base: Any) -> Path | None:
    """The folder the base's weights were read from: ``Base.source``, else
    where a Hugging Face model says it came from (a folder, or a hub id in
    the local hub cache)."""
    candidates = [getattr(base, "source", None), getattr(base.model, "name_or_path", None)]
    for candidate in candidates:
        if not candidate:
            continue
        if Path(candidate).is_dir():
            return Path(candidate).resolve()
        cached = _hub_snapshot(str(candidate))
        if cached is not None:
            return cached
    return None


def _hub_snapshot(repo_id: str) -> Path | None:
    if repo_id.count("/") != 1:
        return None
    try:
        from huggingface_hub import snapshot_download

        return Path(snapshot_download(repo_id, local_files_only=True)).resolve()
    except (ImportError, OSError, ValueError):  # not a hub id, or not cached locally: hashed every time
        return None


def _folder_key(folder: Path, task_name: str, model_class: str) -> str | None:
    digest = hashlib.sha256(f"{folder}|{task_name}|{model_class}\n".encode())
    files = sorted(p for p in folder.rglob("*") if p.is_file())
    if len(files) > MAX_FILES:
        return None
    for path in files:
        stat = path.stat()
        digest.update(f"{path.relative_to(folder)}|{stat.st_size}|{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()


def _cache_file() -> Path:
    from lorakit.cache import cache_root

    return cache_root() / "fingerprints.json"


def _read_cache(path: Path) -> dict[str, str]:
    try:
        known = json.loads(path.read_text())
    except (OSError, ValueError):  # none yet, or unreadable: start again
        return {}
    return known if isinstance(known, dict) else {}


def _remember(path: Path, key: str, value: str) -> None:
    from lorakit.atomic import atomic_write_text

    known = _read_cache(path)
    known[key] = value
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(path, json.dumps(known, indent=0, sort_keys=True))
    except OSError:  # a read-only home: the fingerprint is still right, only not remembered
        pass
