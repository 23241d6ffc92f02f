"""Whether synthesised speech still says its words: Whisper's word error rate.

Speaker similarity and mel distortion tell whether a clone sounds like the
speaker, not whether it is understood: a Piper clone with LoRA on its text
side spoke in the speaker's timbre (similarity 0.53 -> 0.71) words no one
could make out (``targets.py``). The held-out sentences a model speaks are
heard by Whisper (the ``--transcribe`` model: the bundled tiny.en unless
another is named) and compared word by word with their text: the word error
rate, as TTS papers report intelligibility. It measures the base too, so a
run shows what the adapter changed; a small base (the demo's) is itself hard
to hear.
"""

from __future__ import annotations

from typing import Any, Sequence

from lorakit.api import ConfigError, warn
from lorakit_voice.transcribe import Recognizer, recognizer_for, word_errors, words


class Listener:
    """Whisper in the base's language; ``word_error_rate`` is None when it
    cannot listen (``--transcribe no``, an English-only model and a base that
    speaks another language, faster-whisper missing), said once."""

    def __init__(self, choice: str, language: str):
        self._recognizer: Recognizer | None = recognizer_for(choice, language)

    def word_error_rate(self, texts: Sequence[str], audios: Sequence[Any], sample_rate: int) -> float | None:
        """Words Whisper got wrong (substituted, inserted, left out) over
        the words of ``texts``, all clips together; a clip counts at most
        as many errors as its text has words, so one that Whisper hears as
        a loop ("let's go, let's go, ...") weighs as one it does not hear
        at all, and the rate runs from 0 (every word heard) to 1."""
        heard = [self.heard(audio, sample_rate) for audio in audios]
        if self._recognizer is None:
            return None
        truth = [words(text) for text in texts]
        total = sum(map(len, truth))
        errors = sum(min(word_errors(t, words(h)), len(t)) for t, h in zip(truth, heard))
        return errors / total if total else None

    def heard(self, audio: Any, sample_rate: int) -> str:
        """What Whisper hears in ``audio`` (empty when it cannot listen)."""
        if self._recognizer is None:
            return ""
        try:
            return self._recognizer.hear(audio, sample_rate)[0]
        except ConfigError as error:  # the model cannot load: the run goes on without the metric
            warn(f"the word error rate of the speech is not measured: {error}")
            self._recognizer = None
            return ""
