"""Long recordings with one transcript, cut at their sentences: the sample
speaker's clips joined into takes with pauses of 0.15-0.6 s between sentences."""

import random
from pathlib import Path

import numpy as np
import pytest
import soundfile
import soxr

from lorakit.api import DataError, read_transcripts, trim_silence
from lorakit_voice import long_clips
from lorakit_voice.long_clips import cut_recording
from lorakit_voice.sentences import split_sentences

RATE = 16000
KAUKO = Path(__file__).resolve().parents[3] / "samples" / "voice" / "kauko"


def _take(names, seed=0):
    """The clips ``names`` trimmed and joined with random pauses: (audio, text,
    [(start, end) sample of each pause])."""
    rng = random.Random(seed)
    texts = read_transcripts(KAUKO)
    parts, pauses, position = [], [], 0
    for name in names:
        audio, rate = soundfile.read(KAUKO / f"{name}.wav", dtype="float32")
        speech = trim_silence(soxr.resample(audio, rate, RATE).astype(np.float32), RATE, 40)
        if parts:
            gap = np.zeros(int(rng.uniform(0.15, 0.6) * RATE), dtype=np.float32)
            pauses.append((position, position + len(gap)))
            parts.append(gap)
            position += len(gap)
        parts.append(speech)
        position += len(speech)
    return np.concatenate(parts), " ".join(texts[name] for name in names), pauses


def _cut(audio, text):
    return cut_recording(audio, RATE, split_sentences(text), "en-us")


@pytest.mark.parametrize("first", [1, 13])
def test_each_sentence_end_is_cut_in_its_pause(first):
    names = [f"{n:04d}" for n in range(first, first + 6)]
    audio, text, pauses = _take(names, seed=first)
    pieces = _cut(audio, text)
    texts = read_transcripts(KAUKO)
    assert [piece.text for piece in pieces] == [texts[name] for name in names]
    for piece, (start, end) in zip(pieces[1:], pauses):
        assert start <= piece.start <= end  # inside the silence between the two clips
    assert pieces[0].start == 0 and pieces[-1].end == len(audio)


def test_a_take_with_hum_and_hiss_under_the_voice_is_cut_as_a_clean_one():
    """A home recording: mains hum and hiss 25 dB under the voice fill every
    pause, which a threshold under the loudest frame took for speech."""
    names = [f"{n:04d}" for n in range(7, 13)]
    audio, text, pauses = _take(names, seed=7)
    rng = np.random.default_rng(0)
    t = np.arange(len(audio)) / RATE
    noise = rng.normal(0, 1, len(audio)) + 0.5 * np.sin(2 * np.pi * 50 * t)
    noise *= np.sqrt(np.mean(audio ** 2) / np.mean(noise ** 2)) / 10 ** (25 / 20)
    pieces = _cut((audio + noise).astype(np.float32), text)
    texts = read_transcripts(KAUKO)
    assert [piece.text for piece in pieces] == [texts[name] for name in names]
    for piece, (start, end) in zip(pieces[1:], pauses):
        assert start <= piece.start <= end


def test_a_take_too_long_to_align_at_once_is_halved_at_a_sentence_end_first(monkeypatch):
    monkeypatch.setattr(long_clips, "MAX_ALIGNED_SECONDS", 15.0)  # the take is 60 s: halved twice or more
    names = [f"{n:04d}" for n in range(1, 23)]
    audio, text, pauses = _take(names, seed=3)
    assert len(audio) / RATE > 4 * 15
    pieces = _cut(audio, text)
    texts = read_transcripts(KAUKO)
    assert [piece.text for piece in pieces] == [texts[name] for name in names]
    for piece, (start, end) in zip(pieces[1:], pauses):
        assert start <= piece.start <= end
    assert pieces[-1].end == len(audio)


def test_a_take_over_the_longest_cut_is_refused_saying_how_to_cut_it(monkeypatch):
    monkeypatch.setattr(long_clips, "MAX_RECORDING_SECONDS", 12.0)
    audio, text, _ = _take([f"{n:04d}" for n in range(1, 7)])
    with pytest.raises(DataError, match=r"up to 0.2 minutes .*cut it into shorter parts"):
        _cut(audio, text)


def test_a_sentence_starting_with_a_dash_is_spoken_not_taken_for_an_option():
    dialogue = long_clips._espeak("- Yes, she said, and closed the door.", "en-us", 40)
    plain = long_clips._espeak("Yes, she said, and closed the door.", "en-us", 40)
    assert abs(len(dialogue) - len(plain)) / RATE < 0.3 and len(plain) / RATE > 1.0


def test_another_recordings_transcript_is_refused():
    audio, _, _ = _take([f"{n:04d}" for n in range(1, 7)])
    _, other, _ = _take([f"{n:04d}" for n in range(21, 27)])
    with pytest.raises(DataError, match="does not follow its audio"):
        _cut(audio, other)


def test_a_transcript_missing_a_sentence_is_refused():
    audio, text, _ = _take([f"{n:04d}" for n in range(1, 7)])
    sentences = split_sentences(text)
    with pytest.raises(DataError, match="does not follow its audio"):
        _cut(audio, " ".join(sentences[:2] + sentences[3:]))


def test_a_one_sentence_transcript_cannot_be_cut():
    audio, _, _ = _take([f"{n:04d}" for n in range(1, 7)])
    with pytest.raises(DataError, match="one sentence"):
        _cut(audio, "My brother wanted a warm coat near the river")


def _write_takes(folder, takes):
    folder.mkdir()
    lines = []
    for number, names in enumerate(takes, start=1):
        audio, text, _ = _take(names, seed=number)
        soundfile.write(folder / f"take{number}.wav", audio, RATE)
        lines.append(f"take{number}|{text}")
    return lines


def test_a_speaker_folder_of_long_takes_trains_on_its_sentences(tmp_path, demo_base):
    from lorakit_voice.data import read_speaker

    takes = [[f"{n:04d}" for n in range(start, start + 7)] for start in (1, 8, 15)]
    lines = _write_takes(tmp_path / "takes", takes)
    _, wrong, _ = _take([f"{n:04d}" for n in range(30, 37)])
    lines[2] = f"take3|{wrong}"  # the third take with another take's transcript
    (tmp_path / "takes" / "metadata.csv").write_text("\n".join(lines) + "\n")
    examples, summary = read_speaker(tmp_path / "takes", demo_base.model, min_total_seconds=10, show=False)
    texts = read_transcripts(KAUKO)
    assert [e.text for e in examples] == [texts[name] for name in takes[0] + takes[1]]
    assert [e.clip for e in examples[:3]] == ["take1.wav", "take1.wav#1", "take1.wav#2"]
    assert all(1.0 <= e.seconds <= 5.0 for e in examples)
    assert summary["cut_at_sentences"] == {"take1.wav": 7, "take2.wav": 7}
    [(name, reason)] = [(r["file"], r["reason"]) for r in summary["rejected"]]
    assert name == "take3.wav" and "could not be cut at its sentences" in reason and "does not follow" in reason


def test_without_espeak_ng_a_long_take_is_refused_saying_so(tmp_path, demo_base, monkeypatch):
    from lorakit_voice.data import read_speaker

    lines = _write_takes(tmp_path / "takes", [[f"{n:04d}" for n in range(1, 8)]])
    (tmp_path / "takes" / "metadata.csv").write_text("\n".join(lines) + "\n")
    monkeypatch.setattr(long_clips.shutil, "which", lambda name: None)
    with pytest.raises(DataError, match="needs espeak-ng"):
        read_speaker(tmp_path / "takes", demo_base.model, min_total_seconds=10, show=False)


def test_a_one_word_sentence_joins_its_neighbour_rather_than_being_dropped():
    from lorakit_voice.long_clips import Piece, _short_ones_joined

    second = RATE
    pieces = [Piece(0, 3 * second, "Pour it slowly."), Piece(3 * second, 3 * second + second // 2, "Milk?"),
              Piece(3 * second + second // 2, 6 * second, "That is your own business."),
              Piece(6 * second, 6 * second + second // 3, "Yes.")]
    joined = _short_ones_joined(pieces, int(1.2 * second))
    assert [p.text for p in joined] == ["Pour it slowly.", "Milk? That is your own business. Yes."]
    assert [(p.start, p.end) for p in joined] == [(0, 3 * second), (3 * second, 6 * second + second // 3)]
