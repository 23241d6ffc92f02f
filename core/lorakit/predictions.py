"""Writing predictions: JSON lines, and audio predictions as wav files."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from lorakit.atomic import atomic_write_text, check_writable
from lorakit.errors import ConfigError, OutputError

LINES_FILE = "predictions.jsonl"


def write_predictions(records: list[dict[str, Any]], out: Path | None) -> str:
    """Write ``records`` and return them as JSON lines (audio replaced by its file).

    Without audio, ``out`` (optional) is a JSON-lines file. Audio needs ``out``:
    a ``.wav`` path for a single prediction, else a folder that receives
    ``0001.wav``... and ``predictions.jsonl``.
    """
    has_audio = any("audio" in r for r in records)
    if not has_audio:
        lines = _lines(records)
        if out is not None:
            atomic_write_text(out, lines)
        return lines
    check_audio_target(out, len(records))
    if out.suffix.lower() == ".wav":
        targets = [out]
    else:
        targets = [out / f"{i:04d}.wav" for i in range(1, len(records) + 1)]
    written = [_write_audio(record, target) for record, target in zip(records, targets)]
    lines = _lines(written)
    if out.suffix.lower() != ".wav":
        atomic_write_text(out / LINES_FILE, lines)
    return lines


def check_audio_target(out: Path | None, count: int) -> None:
    """Refuse an ``--out`` that ``count`` audio predictions cannot be written to."""
    if out is None:
        raise ConfigError("these predictions are audio: pass --out FILE.wav (one input) or --out FOLDER")
    if out.suffix.lower() == ".wav":
        if count != 1:
            raise ConfigError(f"{count} audio predictions cannot go to one file {out}; pass --out FOLDER")
        check_writable(out, "--out")
    elif out.exists() and not out.is_dir():
        raise OutputError(f"{out} is a file; pass a folder (or a .wav path for a single prediction)")
    else:
        check_writable(out, "--out", folder=True)


def _write_audio(record: dict[str, Any], target: Path) -> dict[str, Any]:
    import os
    import tempfile

    import soundfile

    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".wav", dir=target.parent)
    os.close(fd)
    try:
        soundfile.write(tmp, record["audio"], int(record["sample_rate"]), subtype="PCM_16")
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    rest = {k: v for k, v in record.items() if k not in ("audio",)}
    return {**rest, "audio": str(target)}


def _lines(records: list[dict[str, Any]]) -> str:
    return "".join(json.dumps(r, ensure_ascii=False, default=str) + "\n" for r in records)
