"""The adapter artifact: a folder stock peft loads, plus a lorakit manifest and a model card.

    adapter_config.json        peft's config
    adapter_model.safetensors  LoRA (and modules_to_save) weights, safetensors only
    lorakit.json               task, base and its fingerprint, LoRA shape, data, metrics
    README.md                  model card with the Hugging Face metadata header
"""

from __future__ import annotations

import contextlib
import datetime
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

from lorakit.atomic import atomic_dir, recover
from lorakit.errors import AdapterError, OutputError

MANIFEST = "lorakit.json"
WEIGHTS = "adapter_model.safetensors"
FORMAT_VERSION = 1


@dataclass
class Manifest:
    """What lorakit records about an adapter, beside peft's own config."""

    task: str
    base: str
    base_fingerprint: str
    targets: Any
    r: int
    alpha: float
    dropout: float = 0.0
    rslora: bool = False
    dora: bool = False
    modules_to_save: list[str] = field(default_factory=list)
    trigger_words: list[str] = field(default_factory=list)
    data: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    training: dict[str, Any] = field(default_factory=dict)
    #: The task's options as trained (restored when the adapter is used).
    options: dict[str, Any] = field(default_factory=dict)
    lorakit_version: str = ""
    created: str = ""
    format: int = FORMAT_VERSION

    def to_json(self) -> str:
        return json.dumps(self.__dict__, indent=2, sort_keys=False, default=str) + "\n"


def resolve_adapter_dir(path: str | Path) -> Path:
    """Accept a run folder (its ``adapter/``) or an adapter folder itself."""
    path = Path(path)
    if path.is_file():  # adapter/adapter_model.safetensors, say: an adapter is its whole folder
        if (path.parent / "adapter_config.json").is_file():
            raise AdapterError(f"{path} is one file of an adapter; pass its folder, {path.parent} (or the run "
                               "folder made by `lorakit run`)")
        raise AdapterError(f"{path} is a file, not an adapter; pass a run folder made by `lorakit run` or its "
                           "adapter/ folder")
    for candidate in (path, path / "adapter"):
        with contextlib.suppress(OSError):  # a read-only folder: read it as it is
            recover(candidate)  # a copy a killed run left mid-swap goes back in place
        if (candidate / "adapter_config.json").is_file():
            return candidate
    if (path / "config.yaml").is_file() and (path / "checkpoints").is_dir():  # a run, stopped or still going
        raise AdapterError(f"{path} is a run that has not finished: its adapter is written when training ends; "
                           f"continue it with its command plus --resume (--output {path}), or wait for it")
    raise AdapterError(
        f"{path} is not an adapter: no adapter_config.json in it or in {path / 'adapter'}. "
        "Pass a run folder made by `lorakit run` or its adapter/ folder"
    )


def read_manifest(adapter_dir: Path) -> Manifest:
    """The lorakit manifest of an adapter folder whose files are checked first."""
    check_adapter_files(adapter_dir)
    path = Path(adapter_dir) / MANIFEST
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return Manifest(**data)
    except FileNotFoundError:
        raise AdapterError(f"{path} is missing: this adapter was not made by lorakit (load it with peft directly)") from None
    except (json.JSONDecodeError, TypeError) as exc:
        raise AdapterError(f"{path} is not a valid lorakit manifest: {exc}") from None


def save_adapter(model: Any, path: Path, manifest: Manifest, replace: bool = False) -> Path:
    """Write the adapter artifact of a ``PeftModel`` to ``path`` atomically."""
    from lorakit import __version__
    from lorakit.lora import has_dilated_lora
    from lorakit.model_card import model_card, transformers_class

    path = Path(path)
    if path.exists() and not replace:
        raise OutputError(f"{path} already exists; choose another folder or remove it")
    manifest.lorakit_version = __version__
    manifest.created = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    with atomic_dir(path, replace=replace) as tmp:
        # No base embedding matrices: lorakit never resizes a vocabulary, and peft's "auto" asked the Hub
        # about the base at every save (a warning offline, a request online).
        model.save_pretrained(tmp, safe_serialization=True, save_embedding_layers=False)
        (tmp / MANIFEST).write_text(manifest.to_json(), encoding="utf-8")
        card = model_card(manifest, has_dilated_lora(model), transformers_class(model))
        (tmp / "README.md").write_text(card, encoding="utf-8")
    return path


def check_base(manifest: Manifest, base_fingerprint: str, adapter_dir: Path, task: str) -> None:
    """Refuse an adapter made for another task or for other base weights."""
    if manifest.task != task:
        raise AdapterError(f"{adapter_dir} is a {manifest.task!r} adapter, not a {task!r} one")
    if manifest.base_fingerprint != base_fingerprint:
        raise AdapterError(
            f"{adapter_dir} was trained on base {manifest.base!r} (fingerprint {manifest.base_fingerprint}), "
            f"but the base loaded now has fingerprint {base_fingerprint}. Load the same base with --base, "
            "or pass --ignore-base-mismatch to apply it anyway"
        )


def check_adapter_files(adapter_dir: Path) -> None:
    """Refuse a damaged adapter folder by the file that is broken, before
    peft or safetensors meet it: the config must be a peft config in JSON,
    the weights a complete safetensors file."""
    from safetensors import SafetensorError, safe_open

    adapter_dir = Path(adapter_dir)
    config = adapter_dir / "adapter_config.json"
    damaged = "the adapter folder is damaged: copy it again or retrain it"
    try:
        values = json.loads(config.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise AdapterError(f"{config} is not valid JSON ({exc}); {damaged}") from None
    if not isinstance(values, dict) or "peft_type" not in values:
        raise AdapterError(f"{config} is not a peft adapter config (no peft_type); {damaged}")
    weights = adapter_dir / WEIGHTS
    if not weights.is_file():
        pickled = " (it has adapter_model.bin, a pickle, which lorakit does not load)" if (
            adapter_dir / "adapter_model.bin").is_file() else ""
        raise AdapterError(f"{weights} is missing{pickled}; {damaged}")
    try:
        with safe_open(str(weights), "pt") as handle:
            for key in handle.keys():
                handle.get_tensor(key)
    except (SafetensorError, OSError) as exc:
        raise AdapterError(f"{weights} is not a complete safetensors file ({exc}); {damaged}") from None


@contextlib.contextmanager
def peft_load_errors(adapter_dir: Path) -> Iterator[None]:
    """peft's loading errors as one ``AdapterError`` naming the adapter; a
    weight whose shape does not fit the base is named with both shapes."""
    try:
        yield
    except (ValueError, KeyError, RuntimeError, OSError) as exc:
        text = str(exc)
        mismatch = re.search(r"size mismatch for ([^:]+): (.*?shape in current model is [^.]+)", text)
        if mismatch:
            raise AdapterError(f"{Path(adapter_dir) / WEIGHTS} does not fit this base: {mismatch.group(1)}: "
                               f"{mismatch.group(2)}. It was trained on another model; pass that one with --base") from None
        raise AdapterError(f"cannot load the adapter in {adapter_dir}: {text.splitlines()[0] if text else exc!r}") from None


def load_adapter(base_model: Any, adapter_dir: Path, adapter_name: str = "default") -> Any:
    """Wrap ``base_model`` in a PeftModel with the saved adapter (inference mode)."""
    from peft import PeftModel

    from lorakit.lora import match_conv_geometry

    with peft_load_errors(adapter_dir):
        model = PeftModel.from_pretrained(base_model, str(adapter_dir), adapter_name=adapter_name, is_trainable=False)
    return match_conv_geometry(model)
