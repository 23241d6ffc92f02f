"""Applying saved adapters to their base outside a run: one adapter, or several with weights.

Used by ``lorakit predict`` / ``evaluate`` / ``export`` and by plugin commands
that work through many inputs with a fixed model (batch captioning).
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from lorakit.artifact import Manifest, check_base, read_manifest, resolve_adapter_dir
from lorakit.errors import AdapterError, ConfigError
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


def parse_adapter(spec: str) -> tuple[str, float]:
    """``runs/style:0.7`` -> ("runs/style", 0.7); no weight means 1.0."""
    path, _, weight = spec.rpartition(":")
    if path:
        try:
            value = float(weight)
        except ValueError:
            return spec, 1.0
        if not math.isfinite(value):  # every delta times nan or inf: a model of nan, captions of nothing
            raise ConfigError(f"--adapter {spec}: the weight {weight} is not a finite number; write RUN:0.7")
        return path, value
    return spec, 1.0


def read_adapters(adapters: Sequence[tuple[str | Path, float]]) -> list[AdapterSpec]:
    """Resolve adapter folders and read their manifests, refusing broken ones."""
    specs = []
    for path, weight in adapters:
        folder = resolve_adapter_dir(path)
        specs.append(AdapterSpec(folder, float(weight), read_manifest(folder)))
    return specs


def check_composable(adapters: Sequence[AdapterSpec], task_name: str | None = None, same_base: bool = True) -> None:
    """Refuse, before any model loads, adapters that cannot apply together:
    one of another task (than ``task_name``, or than the first adapter's), one
    made on other base weights than the first (unless not ``same_base``), or
    one training whole modules beside others."""
    from lorakit.merge import refuse_whole_modules_in_mix

    seen: dict[Path, Path] = {}
    for spec in adapters:  # one adapter at two weights is one adapter at their sum: said once, as serving does
        folder = Path(spec.path).resolve()
        if folder in seen:
            raise AdapterError(f"{spec.path} is given twice (with {seen[folder]}); give each adapter once, with "
                               "the weight it should have")
        seen[folder] = Path(spec.path)
    known = [spec for spec in adapters if spec.manifest is not None]
    if not known:
        return
    first = known[0]
    for spec in known:
        if task_name is not None and spec.manifest.task != task_name:
            raise AdapterError(f"{spec.path} is a {spec.manifest.task!r} adapter, not a {task_name!r} one")
        if spec.manifest.task != first.manifest.task:
            raise AdapterError(f"{spec.path} is a {spec.manifest.task!r} adapter and {first.path} a "
                               f"{first.manifest.task!r} one: adapters combine only within one task")
        if same_base and spec.manifest.base_fingerprint != first.manifest.base_fingerprint:
            raise AdapterError(
                f"{spec.path} was made on base {spec.manifest.base!r} (fingerprint {spec.manifest.base_fingerprint}) "
                f"and {first.path} on base {first.manifest.base!r} (fingerprint {first.manifest.base_fingerprint}): "
                "adapters combine only on the base they share (--ignore-base-mismatch applies them anyway)")
    refuse_whole_modules_in_mix([str(s.path) for s in known if s.manifest.modules_to_save], len(adapters))


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
    checked against it, fitted to ``task``'s options (``prepare_base``, as
    opening one adapter does) and the adapters merged in scaled by their
    weights, in eval mode on the GPU when there is one."""
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
    task.prepare_base(base, None)
    model = merge_weighted(base.model, [(a.path, a.weight) for a in adapters]) if adapters else base.model
    model.eval().to(inference_device())
    configure_threads()
    return Adapted(base, model, base_print, list(adapters))
