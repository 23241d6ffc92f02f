"""Applying saved adapters to their base outside a run: one adapter, or several with weights.

Used by ``lorakit predict`` / ``evaluate`` / ``export`` and by plugin commands
that work through many inputs with a fixed model (batch captioning).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from lorakit.artifact import Manifest, check_base, read_manifest, resolve_adapter_dir
from lorakit.errors import AdapterError
from lorakit.fingerprints import base_fingerprint, file_fingerprint
from lorakit.task import Base, Task
from lorakit.threads import configure as configure_threads


@dataclass
class AdapterSpec:
    """An adapter folder (or the run folder holding it) and its weight."""

    path: Path
    weight: float = 1.0
    manifest: Manifest | None = None


@dataclass
class Adapted:
    """A base with adapters merged in, and what made it, for provenance."""

    base: Base
    model: Any
    base_fingerprint: str
    adapters: list[AdapterSpec] = field(default_factory=list)

    def provenance(self) -> dict[str, Any]:
        """The base and each adapter by weight and file fingerprint, as records
        carry them; paths absolute, like the records' image paths, so a record
        means the same thing read from any folder."""
        return {
            "base": self.base.name,
            "base_fingerprint": self.base_fingerprint,
            "adapters": [{"path": os.path.abspath(a.path), "weight": a.weight,
                          "fingerprint": file_fingerprint(a.path / "adapter_model.safetensors")} for a in self.adapters],
        }


def read_adapters(adapters: Sequence[tuple[str | Path, float]]) -> list[AdapterSpec]:
    """Resolve adapter folders and read their manifests, refusing broken ones."""
    specs = []
    for path, weight in adapters:
        folder = resolve_adapter_dir(path)
        specs.append(AdapterSpec(folder, float(weight), read_manifest(folder)))
    return specs


def load_base(task: Task, name: str) -> Base:
    """Load a base through its task and record a local folder by its absolute path."""
    base = task.load_base(name)
    if not base.name:
        base.name = name
    if Path(name).is_dir():
        base.name = str(Path(name).resolve())
    return base


def open_with_adapters(task: Task, adapters: Sequence[AdapterSpec], base_name: str | None = None,
                       ignore_base_mismatch: bool = False) -> Adapted:
    """The base the adapters were made for (or ``base_name``), each adapter
    checked against it and merged in scaled by its weight, in eval mode on
    the GPU when there is one."""
    from lorakit.device import inference_device
    from lorakit.merge import merge_weighted

    for spec in adapters:
        if spec.manifest is not None and spec.manifest.task != task.name:
            raise AdapterError(f"{spec.path} is a {spec.manifest.task!r} adapter, not a {task.name!r} one")
    default = adapters[0].manifest.base if adapters and adapters[0].manifest else "demo"
    base = load_base(task, base_name or default)
    base_print = base_fingerprint(base, task.name)
    if not ignore_base_mismatch:
        for spec in adapters:
            check_base(spec.manifest, base_print, spec.path, task.name)
    model = merge_weighted(base.model, [(a.path, a.weight) for a in adapters]) if adapters else base.model
    model.eval().to(inference_device())
    configure_threads()
    return Adapted(base, model, base_print, list(adapters))
