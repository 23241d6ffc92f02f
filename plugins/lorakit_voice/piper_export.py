"""A voice trained from a Piper base, written back as a Piper voice:
``lorakit export RUN --piper OUT`` gives ``OUT/voice.onnx`` +
``OUT/voice.onnx.json`` that piper-tts (and Home Assistant, and every other
Piper runtime) plays, and a ``README.md`` model card.

The ONNX is coqui's export of the merged model (the weight-norm layers
already hold their merged weights); the ``.onnx.json`` is the base voice's
own, so the phonemes, ids and sample rate stay those the voice was trained
with, plus a ``lorakit`` entry recording where the voice came from (Piper
ignores keys it does not know). Before anything is kept, onnxruntime speaks
the check sentence from the written file and must match the merged PyTorch
model (``piper.TOLERANCE``).
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

from lorakit.api import AdapterError, BaseModelError, ConfigError, file_fingerprint

from lorakit_voice.base import PIPER_PREFIX
from lorakit_voice.export_card import card_header

#: Names of the files in the export folder.
ONNX_FILE = "voice.onnx"
CONFIG_FILE = ONNX_FILE + ".json"

CARD = """# {title}

A Piper voice cloned with lorakit: a LoRA adapter trained on recordings of
the target speaker on top of the Piper voice `{base}`, merged into its
weights and exported to ONNX. It speaks through the same espeak-ng phonemes
and ids as the base voice (`{config}` is the base's, with a `lorakit` entry).

```bash
echo "Hello there." | piper --model {onnx} --output_file hello.wav
lorakit predict voice-clone --base piper:{onnx} --text "Hello there." --out hello.wav
```

## Provenance

- base voice: `{base}` (`{base_file}`, {base_sha})
- adapter: LoRA rank {r} trained {created} (base weights fingerprint `{fingerprint}`)
- training data: {data}

## Held-out metrics (base voice -> this voice)

{metrics}
"""


def write_piper_voice(vits: Any, base_name: str, folder: Path, manifest: Any) -> float:
    """Export the merged ``vits`` of a run from ``base_name`` (``piper:...``)
    into ``folder``; returns the onnxruntime-vs-PyTorch difference."""
    from lorakit_voice.piper import check_against_onnx, read_piper_config, resolve_voice

    if not base_name.startswith(PIPER_PREFIX):
        raise ConfigError(f"lorakit export --piper: this voice was trained from {base_name!r}, not a Piper voice "
                          "(--base piper:NAME); use lorakit export RUN --merged OUT for a coqui checkpoint")
    base_onnx, base_config = resolve_voice(base_name[len(PIPER_PREFIX):])
    folder = Path(folder)
    with warnings.catch_warnings():  # the tracer's notes on coqui's code: nothing a user can act on
        warnings.simplefilter("ignore")
        vits.eval().export_onnx(str(folder / ONNX_FILE), verbose=False)
    config = json.loads(base_config.read_text(encoding="utf-8"))
    base_sha = file_fingerprint(base_onnx)
    config["lorakit"] = {"base": base_name, "base_onnx_sha256": base_sha,
                         "base_fingerprint": manifest.base_fingerprint, "data": manifest.data,
                         "metrics": manifest.metrics}
    (folder / CONFIG_FILE).write_text(json.dumps(config, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    try:
        difference = check_against_onnx(vits, folder / ONNX_FILE, read_piper_config(folder / CONFIG_FILE))
    except BaseModelError as error:
        raise AdapterError(f"the exported voice does not speak as the merged model does ({error}); "
                           "nothing was written") from None
    (folder / "README.md").write_text(card(manifest, base_name, base_onnx, base_sha), encoding="utf-8")
    return difference


def card(manifest: Any, base_name: str, base_onnx: Path, base_sha: str) -> str:
    """The export's model card: how to play it, what it came from, how it scored."""
    data = manifest.data or {}
    described = ", ".join(f"{key} {value}" for key, value in data.items() if isinstance(value, (int, float, str)))
    return card_header(None, "piper", "onnx") + CARD.format(
        title=f"{base_onnx.stem} + lorakit voice clone", base=base_name, config=CONFIG_FILE, onnx=ONNX_FILE,
        base_file=base_onnx.name, base_sha=base_sha,
        created=manifest.created or "(date not recorded)",
        r=manifest.r, fingerprint=manifest.base_fingerprint, data=described or "(not recorded)",
        metrics=metrics_table(manifest.metrics or {}))


def metrics_table(metrics: dict[str, Any]) -> str:
    """The run report's metrics (``{split: {"examples": n, "base": {...},
    "adapter": {...}}}``) as one Markdown table per split."""
    lines: list[str] = []
    for split, scores in metrics.items():
        if not (isinstance(scores, dict) and isinstance(scores.get("base"), dict)
                and isinstance(scores.get("adapter"), dict)):
            continue
        lines += [f"{split} ({scores.get('examples', '?')} clips):", "",
                  "| metric | base voice | this voice |", "| --- | --- | --- |"]
        lines += [f"| {name} | {_number(scores['base'].get(name))} | {_number(value)} |"
                  for name, value in scores["adapter"].items()]
        lines.append("")
    return "\n".join(lines).strip() or "(not evaluated: the run was made with lorakit train)"


def _number(value: Any) -> str:
    return f"{value:.3f}" if isinstance(value, float) else str(value)
