"""Where lorakit keeps what it can make again: ``$LORAKIT_CACHE``, by default
``~/.cache/lorakit`` (or under ``$XDG_CACHE_HOME``)."""

from __future__ import annotations

import os
from pathlib import Path


def cache_root() -> Path:
    """lorakit's cache folder: ``$LORAKIT_CACHE``, else ``$XDG_CACHE_HOME/lorakit`` (``~/.cache/lorakit``)."""
    explicit = os.environ.get("LORAKIT_CACHE")
    if explicit:
        return Path(explicit).expanduser()
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "lorakit"
