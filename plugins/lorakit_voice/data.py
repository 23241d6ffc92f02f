"""Reading a speaker's folder into training examples, validated against the model.

Clip preparation (formats, mono, resampling, silence trimming, loudness,
splitting, transcripts) is the core's ``lorakit.api.prepare_folder``; this module
adds what is particular to a TTS model: a recording without a transcript is
transcribed (``transcribe``), a long recording is cut at its sentences
(``long_clips``), every transcript must be speakable with the model's
characters, and there must be enough audio to learn a voice.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from lorakit.api import DataError, prepare_folder, rejected_note


@dataclass(frozen=True, eq=False)
class VoiceExample:
    """One prepared clip: ``audio`` is mono float32 at ``sample_rate``;
    ``clip`` names its file (and piece) for messages and sample files."""

    clip: str
    text: str
    audio: Any
    sample_rate: int

    @property
    def seconds(self) -> float:
        return len(self.audio) / self.sample_rate


def read_speaker(folder: Path, vits: Any, min_total_seconds: float, show: bool = True,
                 transcribe: str = "auto") -> tuple[list[VoiceExample], dict]:
    """The usable clips of ``folder`` at the model's rate, and the data summary;
    recordings without a transcript are transcribed by ``transcribe`` (a
    faster-whisper model, ``auto`` or ``no``: ``lorakit_voice.transcribe``)."""
    from lorakit_voice.long_clips import recording_cutter

    rate = int(vits.config.audio.sample_rate)
    prepared = prepare_folder(Path(folder), rate, cut_long=recording_cutter(vits),
                              transcribe=speakable_transcriber(vits, transcribe), show=show)
    if show:
        prepared.print_summary(f"{folder}")
    texts = [plain(clip.text) for clip in prepared.clips]
    check_speakable(vits, [(clip.source, text) for clip, text in zip(prepared.clips, texts)], folder)
    texts = [speakable_form(vits, text) for text in texts]
    if prepared.seconds < min_total_seconds:
        clips = f"{len(prepared.clips)} clips{_rejected(folder, prepared)}"
        raise DataError(
            f"{folder} holds {prepared.seconds:.1f} s of usable speech in {clips}; cloning a voice needs at least "
            f"{min_total_seconds:.0f} s (more is better: 5-30 minutes for a real voice). Add recordings with "
            "transcripts, or lower --options.min_total_seconds"
        )
    examples = [VoiceExample(_clip_name(c.source, c.segment), text, c.audio, rate)
                for c, text in zip(prepared.clips, texts)]
    return examples, prepared.summary()


def base_language(vits: Any) -> str:
    """The espeak-ng language the model speaks (its phonemizer's); English for a grapheme model."""
    return (getattr(vits.config, "phoneme_language", None) if vits.config.use_phonemes else None) or "en-us"


def speakable_transcriber(vits: Any, choice: str) -> Any:
    """``prepare_folder``'s ``transcribe`` for the model: speech recognition in
    its language, refusing words it cannot speak (a "%" Whisper wrote); None for ``no``."""
    from lorakit_voice.transcribe import recognizer_for

    recognizer = recognizer_for(choice, base_language(vits))
    if recognizer is None:
        return None

    def transcribe(audio: Any, sample_rate: int) -> str:
        text = plain(recognizer(audio, sample_rate))
        if found := unspeakable(vits, text):
            raise DataError(f"it heard {text[:80]!r}, with characters this model cannot speak: {_positions(found)}")
        return text

    transcribe.name = recognizer.name  # type: ignore[attr-defined]
    return transcribe


def _rejected(folder: Path, prepared: Any) -> str:
    """`` (not used: FILE: reason; ...)`` for the message of a folder with too little speech."""
    if not prepared.rejected:
        return ""
    return f" (not used: {rejected_note(prepared.rejected, Path(folder))})"


def _clip_name(source: str, segment: int) -> str:
    return source if segment == 0 else f"{source}#{segment}"


#: Typographic characters that word processors, transcribers and chat models
#: write, read as their plain forms one for one (so positions in messages hold).
_PLAIN = str.maketrans({"\u2018": "'", "\u2019": "'", "\u02bc": "'", "\u201c": '"', "\u201d": '"',
                        "\u201e": '"', "\u2013": "-", "\u2014": "-", "\u00a0": " "})


def plain(text: str) -> str:
    """``text`` with curly quotes, apostrophes and dashes made plain: what a
    grapheme model's vocabulary holds (a phoneme model reads either)."""
    return text.translate(_PLAIN)


#: Symbols coqui's English cleaner leaves as they are, read as espeak-ng (and
#: so a Piper voice) reads them: "50%" is "fifty percent", "and/or" "and slash or".
_SYMBOL_WORDS = {"%": "percent", "&": "and", "/": "slash", "+": "plus", "=": "equals", "@": "at"}
_SYMBOLS = re.compile("[" + re.escape("".join(_SYMBOL_WORDS)) + "]")


def speakable_form(vits: Any, text: str) -> str:
    """``text`` as a grapheme model with coqui's English cleaner (the demo)
    can speak it: %, &, /, +, = and @ spelled out in words, and accents taken
    off Latin letters ("café", "Zoë"); other models' text is returned as it is
    (a phonemizer reads them)."""
    if vits.config.use_phonemes or getattr(vits.tokenizer.text_cleaner, "__name__", "") != "english_cleaners":
        return text
    text = "".join(_unaccented(ch) for ch in text)
    spelled = _SYMBOLS.sub(lambda match: f" {_SYMBOL_WORDS[match.group()]} ", text)
    if spelled == text:
        return text
    return re.sub(r" +([.,!?;:])", r"\1", re.sub(r" {2,}", " ", spelled)).strip()


def _unaccented(char: str) -> str:
    """``char`` without its accent when it is a Latin letter with one ("é" -> "e"), else itself."""
    base, *marks = unicodedata.normalize("NFD", char)
    return base if marks and all(map(unicodedata.combining, marks)) and base.isascii() else char


def unspeakable(vits: Any, text: str) -> list[tuple[int, str]]:
    """(position, character) of every character of ``text`` the model cannot
    speak, after symbols are spelled out (``speakable_form``) and the model's own
    text cleaner. Empty for phoneme models: their phonemizer speaks any text
    of the language."""
    if vits.config.use_phonemes:
        return []
    vocabulary = set(vits.tokenizer.characters.vocab)
    cleaner = vits.tokenizer.text_cleaner

    def cleaned(part: str) -> str:
        # Cleaned as the tokenizer cleans it: synthesis and training pass no
        # language, and coqui's English cleaner then leaves "&" as it is.
        part = speakable_form(vits, part)
        return cleaner(part, lang=None) if cleaner is not None else part

    bad = {ch for ch in cleaned(text) if ch not in vocabulary}
    if not bad:
        return []
    found = [(i, ch) for i, ch in enumerate(text) if ch in bad or set(cleaned(ch)) & bad]
    # A character the cleaner made (not in the original) is named without a position.
    return found or [(-1, ch) for ch in sorted(bad)]


def check_speakable(vits: Any, items: Sequence[tuple[str, str | None]], where: Path | str) -> None:
    """Raise a DataError listing every text (transcript or input) the model cannot speak,
    with its file and the 1-based position of each bad character."""
    problems = [f"{name}: {_positions(found)}" for name, text in items if (found := unspeakable(vits, text or ""))]
    if problems:
        allowed = "".join(sorted(set(vits.tokenizer.characters.vocab) - {vits.tokenizer.characters.pad,
                                                                        vits.tokenizer.characters.blank}))
        shown = "; ".join(problems[:10]) + (f"; and {len(problems) - 10} more texts" if len(problems) > 10 else "")
        raise DataError(
            f"{where}: characters this model cannot speak: {shown}. "
            f"Rewrite them with the model's characters ({allowed!r}; e.g. spell out numbers and symbols)"
        )


def _positions(found: list[tuple[int, str]]) -> str:
    """``'/' (positions 20, 22), '%' (position 37)``: each bad character of a
    text once, with its 1-based positions."""
    by_char: dict[str, list[int]] = {}
    for position, char in found:
        by_char.setdefault(char, []).append(position + 1)
    shown = []
    for char, positions in by_char.items():
        known = [str(p) for p in positions if p > 0]
        where = f"position{'s' if len(known) > 1 else ''} {', '.join(known)}" if known else "after text cleaning"
        shown.append(f"{char!r} ({where})")
    return ", ".join(shown)
