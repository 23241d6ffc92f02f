"""The adapter's model card: a README.md with the Hugging Face metadata header."""

from __future__ import annotations

import json
from typing import Any

from lorakit.artifact import Manifest


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
        "or with peft directly: `PeftModel.from_pretrained(base_model, THIS_FOLDER)` (with peft 0.21, "
        "LoRA on dilated convolutions also needs `lorakit.lora.match_conv_geometry(model)`: peft builds it "
        "without the dilation).",
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
