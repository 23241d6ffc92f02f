"""The adapter artifact: a folder stock peft loads, plus a lorakit manifest and a model card.

    adapter_config.json        peft's config
    adapter_model.safetensors  LoRA (and modules_to_save) weights, safetensors only
    lorakit.json               task, base and its fingerprint, LoRA shape, data, metrics
    README.md                  model card with the Hugging Face metadata header
"""

from __future__ import annotations

import datetime
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lorakit.atomic import atomic_dir
from lorakit.errors import AdapterError, OutputError

MANIFEST = "lorakit.json"
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


def resolve_adapter_dir(path: str | Path) -> Path:
    """Accept a run folder (its ``adapter/``) or an adapter folder itself."""
    path = Path(path)
    for candidate in (path, path / "adapter"):
        if (candidate / "adapter_config.json").is_file():
            return candidate
    raise AdapterError(
        f"{path} is not an adapter: no adapter_config.json in it or in {path / 'adapter'}. "
        "Pass a run folder made by `lorakit run` or its adapter/ folder"
    )


def read_manifest(adapter_dir: Path) -> Manifest:
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

    path = Path(path)
    if path.exists() and not replace:
        raise OutputError(f"{path} already exists; choose another folder or remove it")
    manifest.lorakit_version = __version__
    manifest.created = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    with atomic_dir(path, replace=replace) as tmp:
        model.save_pretrained(tmp, safe_serialization=True)
        (tmp / MANIFEST).write_text(manifest.to_json(), encoding="utf-8")
        (tmp / "README.md").write_text(model_card(manifest), encoding="utf-8")
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


def load_adapter(base_model: Any, adapter_dir: Path, adapter_name: str = "default") -> Any:
    """Wrap ``base_model`` in a PeftModel with the saved adapter (inference mode)."""
    from peft import PeftModel

    try:
        return PeftModel.from_pretrained(base_model, str(adapter_dir), adapter_name=adapter_name, is_trainable=False)
    except (ValueError, KeyError, RuntimeError, OSError) as exc:
        raise AdapterError(f"cannot load the adapter in {adapter_dir}: {exc}") from None


def merge(peft_model: Any, adapter_names: list[str] | None = None) -> Any:
    """Fold LoRA deltas (the active adapter, or ``adapter_names``) into the base
    weights and return the plain model.

    peft adds a delta to ``weight`` in place, which is lost on a layer whose
    weight is computed by a parametrization (weight norm): the next access
    recomputes it. Those layers are merged here through the parametrization
    (assigning ``weight`` goes through its ``right_inverse``) and their LoRA
    zeroed, then peft merges the rest.
    """
    import torch
    from peft.tuners.lora import LoraLayer
    from torch.nn.utils import parametrize

    for module in peft_model.modules():
        if not isinstance(module, LoraLayer):
            continue
        layer = module.get_base_layer()
        if not parametrize.is_parametrized(layer, "weight"):
            continue
        for name in adapter_names or module.active_adapters:
            if name not in module.lora_B:
                continue
            if module.use_dora.get(name):
                raise AdapterError("DoRA on a weight-normed layer cannot be merged; export the adapter unmerged")
            with torch.no_grad():
                layer.weight = layer.weight + module.get_delta_weight(name)
                module.lora_B[name].weight.zero_()
    return peft_model.merge_and_unload(adapter_names=adapter_names)


def merge_weighted(base_model: Any, adapters: list[tuple[Path, float]]) -> Any:
    """``base_model`` with several adapters merged in, each delta scaled by its
    weight (the ``<lora:name:0.7>`` habit): sum_i w_i * B_i A_i."""
    from peft import PeftModel
    from peft.tuners.lora import LoraLayer

    names = [f"adapter{i}" for i in range(len(adapters))]
    saving = [str(path) for path, _ in adapters if read_manifest(path).modules_to_save]
    if saving and len(adapters) > 1:
        raise AdapterError(f"{', '.join(saving)} train whole modules (modules_to_save), which cannot be mixed "
                           "with other adapters; use such an adapter alone")
    model = PeftModel.from_pretrained(base_model, str(adapters[0][0]), adapter_name=names[0])
    for name, (path, _) in zip(names[1:], adapters[1:]):
        model.load_adapter(str(path), adapter_name=name)
    weights = dict(zip(names, (weight for _, weight in adapters)))
    for module in model.modules():
        if isinstance(module, LoraLayer):
            for name in names:
                if name in module.scaling:
                    module.scaling[name] *= weights[name]
    return merge(model, names)


def file_fingerprint(path: Path) -> str:
    """A short sha256 of a file (e.g. an adapter's weights), for provenance."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return "sha256:" + digest.hexdigest()[:32]


def model_card(manifest: Manifest) -> str:
    """A Hugging Face model card: YAML metadata header, then what/how/metrics."""
    header = {
        "base_model": manifest.base,
        "library_name": "peft",
        "tags": ["lora", "lorakit", manifest.task],
    }
    lines = ["---"]
    lines += [f"base_model: {json.dumps(header['base_model'])}", "library_name: peft", "tags:"]
    lines += [f"- {tag}" for tag in header["tags"]]
    lines += ["---", "", f"# {manifest.task} LoRA adapter", ""]
    lines += [
        f"A LoRA adapter for the `{manifest.task}` task of lorakit, trained on top of "
        f"`{manifest.base}` (weights fingerprint `{manifest.base_fingerprint}`).",
        "",
        "## Use",
        "",
        "```bash",
        f"lorakit predict {manifest.task} --adapter THIS_FOLDER ...",
        "```",
        "",
        "or with peft directly: `PeftModel.from_pretrained(base_model, THIS_FOLDER)`.",
        "",
        "## LoRA",
        "",
        f"- rank {manifest.r}, alpha {manifest.alpha}, dropout {manifest.dropout}"
        + (", rsLoRA" if manifest.rslora else "") + (", DoRA" if manifest.dora else ""),
        f"- targets: `{manifest.targets}`",
    ]
    if manifest.modules_to_save:
        lines.append(f"- trained fully: `{manifest.modules_to_save}`")
    if manifest.trigger_words:
        lines.append(f"- trigger words: {', '.join(manifest.trigger_words)}")
    if manifest.data:
        lines += ["", "## Data", "", "```json", json.dumps(manifest.data, indent=2, default=str), "```"]
    if manifest.metrics:
        lines += ["", "## Evaluation", "", _metrics_table(manifest.metrics)]
    lines += ["", f"Made with lorakit {manifest.lorakit_version} on {manifest.created}.", ""]
    return "\n".join(lines)


def _metrics_table(metrics: dict[str, Any]) -> str:
    """Markdown table of a report's ``{split: {"base": {...}, "adapter": {...}}}``."""
    rows = ["| split | metric | base | adapter |", "|---|---|---|---|"]
    for split, pair in metrics.items():
        if not isinstance(pair, dict) or "adapter" not in pair:
            continue
        for name, value in pair["adapter"].items():
            base_value = pair.get("base", {}).get(name)
            rows.append(f"| {split} | {name} | {_fmt(base_value)} | {_fmt(value)} |")
    return "\n".join(rows)


def _fmt(value: Any) -> str:
    return f"{value:.4f}" if isinstance(value, float) else str(value)
