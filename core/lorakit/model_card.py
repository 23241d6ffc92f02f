"""Model cards: the README.md of an adapter folder and of a merged export,
with the Hugging Face metadata header the Hub reads."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from lorakit.artifact import Manifest

#: A Hub repository id, ``owner/name``: the only kind of base a card's
#: ``base_model`` may name (the Hub links it and checks that it exists).
HUB_ID = re.compile(r"[A-Za-z0-9][\w.-]*/[\w.-]+")


def hub_base(name: str) -> str | None:
    """``name`` if it is a Hub id; None for demo, a local folder, ``piper:...``
    or a coqui model name (``tts_models/en/vctk/vits``)."""
    if not HUB_ID.fullmatch(name) or Path(name).expanduser().exists():
        return None
    return name


def model_card(manifest: Manifest, dilated_convolutions: bool = False, base_class: str | None = None) -> str:
    """The adapter's card: how to use it with lorakit or peft, its LoRA, data and scores.

    ``dilated_convolutions``: LoRA sits on a dilated convolution, which peft
    rebuilds without its dilation unless told (said where peft users read).
    ``base_class``: the base's transformers class, for a peft snippet that
    loads base and adapter as they are."""
    lines = _header(manifest, "peft", [])
    lines += [f"# {manifest.task} LoRA adapter", ""]
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
    ]
    if base_class:
        source = hub_base(manifest.base) or "BASE_FOLDER"
        lines += ["or with peft directly:", "", "```python", "from peft import PeftModel",
                  f"from transformers import {base_class}", "",
                  f'base = {base_class}.from_pretrained("{source}")',
                  'model = PeftModel.from_pretrained(base, "THIS_FOLDER")', "```"]
        if source == "BASE_FOLDER":
            lines += ["", f"(`BASE_FOLDER`: the base `{manifest.base}` as a `save_pretrained` folder.)"]
    else:
        lines.append("or with peft directly: `PeftModel.from_pretrained(base_model, THIS_FOLDER)`"
                     + (" (with peft 0.21, LoRA on dilated convolutions also needs "
                        "`lorakit.lora.match_conv_geometry(model)`: peft builds it without the dilation)."
                        if dilated_convolutions else "."))
    lines += _lora_data_metrics(manifest)
    lines += ["", f"Made with lorakit {manifest.lorakit_version} on {manifest.created}.", ""]
    return "\n".join(lines)


def transformers_class(model: Any) -> str | None:
    """The class name of a (peft-wrapped) model when transformers defines it."""
    inner = model.get_base_model() if hasattr(model, "get_base_model") else model
    return type(inner).__name__ if type(inner).__module__.startswith("transformers.") else None


def merged_model_card(manifest: Manifest, architecture: str | None, difference: float) -> str:
    """The card of a merged export in the model's own Hugging Face format:
    base and adapter in one set of weights that loads without peft;
    ``architecture`` is its transformers class (None: a plugin's own format)."""
    lines = _header(manifest, "transformers" if architecture else None, ["merged-lora"])
    lines += [f"# {manifest.task} model: `{manifest.base}` with a LoRA adapter merged in", ""]
    lines += [
        f"The weights of `{manifest.base}` (fingerprint `{manifest.base_fingerprint}`) with a LoRA adapter "
        f"that lorakit trained for the `{manifest.task}` task added into them: a plain model folder that loads "
        f"without peft. Merging changed the outputs by at most {difference:.3g} (checked on export).",
        "",
        "## Use",
        "",
    ]
    if architecture:
        lines += ["```python", f"from transformers import {architecture}", "",
                  f'model = {architecture}.from_pretrained("THIS_FOLDER")', "```", ""]
    lines += ["```bash", f"lorakit predict {manifest.task} --base THIS_FOLDER ...", "```"]
    lines += _lora_data_metrics(manifest, merged=True)
    lines += ["", f"Adapter made with lorakit {manifest.lorakit_version} on {manifest.created}.", ""]
    return "\n".join(lines)


def _header(manifest: Manifest, library: str | None, tags: list[str]) -> list[str]:
    """The YAML metadata block; ``base_model`` only when the base is on the Hub."""
    lines = ["---"]
    base = hub_base(manifest.base)
    if base:
        lines.append(f"base_model: {json.dumps(base)}")
    if library:
        lines.append(f"library_name: {library}")
    lines.append("tags:")
    lines += [f"- {tag}" for tag in ["lora", "lorakit", manifest.task, *tags]]
    return lines + ["---", ""]


def _lora_data_metrics(manifest: Manifest, merged: bool = False) -> list[str]:
    """The LoRA settings, the data summary and the scores, as card sections."""
    lines = ["", "## LoRA" + (" (merged)" if merged else ""), ""]
    lines.append(f"- rank {manifest.r}, alpha {manifest.alpha}, dropout {manifest.dropout}"
                 + (", rsLoRA" if manifest.rslora else "") + (", DoRA" if manifest.dora else ""))
    lines.append(f"- targets: `{manifest.targets}`")
    if manifest.modules_to_save:
        lines.append(f"- trained fully: `{manifest.modules_to_save}`")
    if manifest.trigger_words:
        lines.append(f"- trigger words: {', '.join(manifest.trigger_words)}")
    if manifest.data:
        lines += ["", "## Data", "", "```json", json.dumps(manifest.data, indent=2, default=str), "```"]
    if manifest.metrics:
        lines += ["", "## Evaluation", ""]
        if merged:
            lines += ["Base vs adapter on the run's held-out data, scored before the merge.", ""]
        lines.append(_metrics_table(manifest.metrics))
    return lines


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
