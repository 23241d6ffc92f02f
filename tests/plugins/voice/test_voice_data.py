"""Reading a speaker folder: transcripts the model cannot speak and too little
audio are refused with the file, the position and the fix."""

import pytest
from voice_speakers import write_speaker

from lorakit.errors import DataError
from lorakit_voice.data import read_speaker, unspeakable
from lorakit_voice.task import VoiceCloneTask, VoiceOptions


def test_unspeakable_characters_are_named_with_file_and_position(tmp_path, demo_base):
    folder = write_speaker(tmp_path / "spk", ["The red box is here.", "We bought 3 apples.", "A cafe near the river."])
    lines = (folder / "metadata.csv").read_text().replace("A cafe", "A café")
    (folder / "metadata.csv").write_text(lines)
    with pytest.raises(DataError) as error:
        read_speaker(folder, demo_base.model, min_total_seconds=1, show=False)
    message = str(error.value)
    assert "002.wav: '3' at position 11" in message
    assert "003.wav: 'é' at position 6" in message
    assert "001.wav" not in message and "spell out numbers" in message


def test_unspeakable_ignores_what_the_cleaner_fixes(demo_base):
    # The demo's basic_cleaners lowercases: capitals are speakable.
    assert unspeakable(demo_base.model, "Hello There, Friend!") == []
    assert unspeakable(demo_base.model, "50% off") == [(0, "5"), (1, "0"), (2, "%")]


def test_too_little_audio_says_how_much_is_needed(tmp_path, demo_base):
    folder = write_speaker(tmp_path / "spk", ["The red box is here.", "We found the old map."])
    with pytest.raises(DataError, match=r"holds \d+\.\d s of usable speech in 2 clips; cloning a voice needs at least 30 s"):
        read_speaker(folder, demo_base.model, min_total_seconds=30, show=False)


def test_examples_are_at_the_model_rate_with_their_text(tmp_path, demo_base):
    folder = write_speaker(tmp_path / "spk", ["The red box is here.", "We found the old map."])
    task = VoiceCloneTask(VoiceOptions(min_total_seconds=2, slot="klatt"))
    examples = task.load_data(folder, demo_base)
    assert [e.text for e in examples] == ["The red box is here.", "We found the old map."]
    assert all(e.sample_rate == 16000 and e.audio.dtype == "float32" for e in examples)
    assert task.summarize_data(examples)["speaker_slot"] == "klatt"


def test_collate_gives_what_coqui_train_step_reads(tmp_path, demo_base):
    folder = write_speaker(tmp_path / "spk", ["The red box is here.", "We found the old map."])
    task = VoiceCloneTask(VoiceOptions(min_total_seconds=2, slot="klatt"))
    batch = task.collate(demo_base, task.load_data(folder, demo_base))
    for key in ("tokens", "token_lens", "waveform", "spec", "spec_lens", "mel", "speaker_ids"):
        assert key in batch
    assert batch["speaker_ids"].tolist() == [2, 2]
    assert batch["spec"].shape[2] == batch["mel"].shape[2] and batch["waveform"].shape[1] == 1
