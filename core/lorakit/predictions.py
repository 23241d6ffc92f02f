"""Writing predictions: JSON lines, and audio predictions as audio files."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Sequence

from lorakit.atomic import atomic_write_bytes, atomic_write_text, check_writable
from lorakit.data.audio import AUDIO_SUFFIXES
from lorakit.errors import ConfigError, OutputError, PluginError

LINES_FILE = "predictions.jsonl"
#: The audio file an ``--out`` of one audio prediction may name, by suffix -> format written.
AUDIO_FILES = {".wav": "wav", ".flac": "flac", ".mp3": "mp3", ".ogg": "opus", ".opus": "opus"}
#: Audio names lorakit neither reads nor writes: an ``--out`` ending so meant a file, not a folder.
OTHER_AUDIO_NAMES = (".aiff", ".aif", ".aifc", ".au", ".caf", ".w64", ".wma", ".wv", ".ape", ".mka", ".amr")


def write_predictions(records: list[dict[str, Any]], out: Path | None) -> str:
    """Write ``records`` and return them as JSON lines (audio replaced by its file).

    Without audio, ``out`` (optional) is a JSON-lines file. Audio needs ``out``:
    an audio file (``AUDIO_FILES``: .wav, .flac, .mp3, .ogg) for a single
    prediction, else a folder that receives ``0001.wav``... and ``predictions.jsonl``.
    """
    has_audio = any("audio" in r for r in records)
    if not has_audio:
        lines = _lines(records)
        if out is not None:
            atomic_write_text(out, lines)
        return lines
    check_audio_target(out, len(records))
    if is_audio_file(out):
        targets = [out]
    else:
        targets = [out / f"{i:04d}.wav" for i in range(1, len(records) + 1)]
    written = [_write_audio(record, target) for record, target in zip(records, targets)]
    lines = _lines(written)
    if not is_audio_file(out):
        atomic_write_text(out / LINES_FILE, lines)
    return lines


def is_audio_file(out: Path | str) -> bool:
    """``out`` names one audio file (``clip.mp3``) rather than a folder of them."""
    return Path(out).suffix.lower() in AUDIO_FILES


def check_audio_target(out: Path | None, count: int) -> None:
    """Refuse an ``--out`` that ``count`` audio predictions cannot be written to."""
    files = ", ".join(AUDIO_FILES)
    if out is None:
        raise ConfigError("these predictions are audio: pass --out FILE.wav (one input; .flac, .mp3 and .ogg too) "
                          "or --out FOLDER")
    if is_audio_file(out):
        if count != 1:
            raise ConfigError(f"{count} audio predictions cannot go to one file {out}; pass --out FOLDER")
        check_writable(out, "--out")
    elif out.suffix.lower() in AUDIO_SUFFIXES + OTHER_AUDIO_NAMES:  # it would have become a folder named song.m4a
        raise ConfigError(f"--out {out}: lorakit writes audio as {files}; name the file with one of them")
    elif out.exists() and not out.is_dir():
        raise OutputError(f"{out} is a file; pass a folder (or an audio file path, {files}, for a single "
                          "prediction)")
    else:
        check_writable(out, "--out", folder=True)
        # Numbered clips replace those of an earlier prediction, never files of the user's (a folder of clips).
        taken = [f"{i:04d}.wav" for i in range(1, count + 1) if (out / f"{i:04d}.wav").exists()]
        if taken and not (out / LINES_FILE).is_file():
            more = f" and {len(taken) - 1} more" if len(taken) > 1 else ""
            raise OutputError(f"--out {out} holds {taken[0]}{more}, which lorakit did not write there (no "
                              f"{LINES_FILE} beside them): choose a new or empty folder")


def check_lines_target(out: Path, inputs: list[Any]) -> None:
    """Refuse a JSON-lines ``--out`` that would overwrite one of ``inputs`` or
    a file that is not JSON lines (an image, notes): earlier predictions are
    replaced, nothing else."""
    check_writable(out, "--out")
    if not out.is_file():
        return
    if any(_same_file(out, i) for i in inputs if isinstance(i, (str, Path))):
        raise OutputError(f"--out {out} is one of the inputs; write the predictions to another file")
    if not _json_lines(out):
        raise OutputError(f"--out {out} exists and is not JSON lines (predictions): choose another file, or "
                          "remove it to write there")


def _same_file(path: Path, given: str | Path) -> bool:
    """Whether input ``given`` is the file ``path`` (an input may be a text, of any length)."""
    try:
        return Path(given).is_file() and path.samefile(given)
    except (OSError, ValueError):  # a name too long, a NUL in a text
        return False


def _json_lines(path: Path) -> bool:
    """Whether ``path``'s first line is a JSON object (or the file is empty)."""
    with open(path, "rb") as handle:
        first = handle.readline(1 << 20).strip()
    try:
        return not first or isinstance(json.loads(first), dict)
    except ValueError:  # not JSON, or not text
        return False


def _write_audio(record: dict[str, Any], target: Path) -> dict[str, Any]:
    """The clip written to ``target`` in the format its suffix names (a folder's clips are wav);
    the record says the file's sample rate (Opus is always 48 kHz)."""
    from lorakit.serving.audio_formats import encode, rate_for

    kind, rate = AUDIO_FILES.get(target.suffix.lower(), "wav"), int(record["sample_rate"])
    data, _ = encode(record["audio"], rate, kind)
    atomic_write_bytes(target, data)
    rest = {k: v for k, v in record.items() if k not in ("audio",)}
    return {**rest, "sample_rate": rate_for(kind, rate), "audio": str(target)}


def _lines(records: list[dict[str, Any]]) -> str:
    return "".join(json.dumps(plain(r), ensure_ascii=False, default=str) + "\n" for r in records)


def plain(value: Any) -> Any:
    """``value`` with tensors and numpy arrays or scalars as lists and
    numbers, inside lists and dicts too: a record's values read the same from
    ``lorakit predict`` and from the server (a tensor was its repr in one)."""
    if isinstance(value, dict):
        return {key: plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(item) for item in value]
    if hasattr(value, "tolist") and not isinstance(value, (str, bytes)):
        return value.tolist()
    return value


def check_records(task_name: str, records: Any, inputs: Sequence[Any]) -> list[dict[str, Any]]:
    """A task's ``predict`` answer, refused unless it is one dict per input:
    a short list handed answers to the wrong inputs (and, served in a batch,
    to the wrong clients), a dict was written as its keys."""
    if not isinstance(records, list) or not all(isinstance(record, dict) for record in records):
        got = type(records).__name__ if not isinstance(records, list) else "a list holding " + ", ".join(
            sorted({type(record).__name__ for record in records if not isinstance(record, dict)}))
        raise PluginError(f"task {task_name!r}: predict must return a list of dicts, one per input; got {got}")
    if len(records) != len(inputs):
        raise PluginError(f"task {task_name!r}: predict returned {len(records)} records for {len(inputs)} inputs; "
                          "return one per input, in order")
    return records
