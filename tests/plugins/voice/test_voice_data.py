"""Reading a speaker folder: transcripts the model cannot speak and too little
audio are refused with the file, the position and the fix."""

import pytest
from voice_speakers import write_speaker

from lorakit.api import DataError
from lorakit_voice.data import read_speaker, unspeakable
from lorakit_voice.task import VoiceCloneTask, VoiceOptions


def test_unspeakable_characters_are_named_with_file_and_position(tmp_path, demo_base):
    folder = write_speaker(tmp_path / "spk", ["The red box is here.", "It cost 5 euros each.", "The dial read 3 or 4."])
    lines = (folder / "metadata.csv").read_text().replace("5 euros", "5 €").replace("3 or 4", "3 ± 1")
    (folder / "metadata.csv").write_text(lines)
    with pytest.raises(DataError) as error:
        read_speaker(folder, demo_base.model, min_total_seconds=1, show=False)
    message = str(error.value)
    assert "002.wav: '€' (position 11)" in message
    assert "003.wav: '±' (position 17)" in message
    assert "001.wav" not in message and "spell out numbers" in message


def test_symbols_and_accents_are_spoken_as_words(tmp_path, demo_base):
    """The demo's characters hold no %, &, /, +, =, @ or accented letters:
    they are read as espeak-ng reads them, in transcripts and in texts to speak."""
    from lorakit_voice.data import speakable_form

    assert speakable_form(demo_base.model, "We ate 100% of it & left.") == "We ate 100 percent of it and left."
    assert speakable_form(demo_base.model, "A café, and/or a+b=c @ Zoë's") == \
        "A cafe, and slash or a plus b equals c at Zoe's"
    folder = write_speaker(tmp_path / "spk", ["We ate half of it.", "A cafe near the river."])
    lines = (folder / "metadata.csv").read_text().replace("half", "50%").replace("cafe", "café")
    (folder / "metadata.csv").write_text(lines)
    examples, _ = read_speaker(folder, demo_base.model, min_total_seconds=1, show=False)
    assert [e.text for e in examples] == ["We ate 50 percent of it.", "A cafe near the river."]
    task = VoiceCloneTask(VoiceOptions(slot="klatt"))
    [symbols], [words] = (task.predict(demo_base, demo_base.model, [text])
                          for text in ("Half is 50% & more.", "Half is 50 percent and more."))
    assert symbols["text"] == "Half is 50% & more."  # what was asked, spoken as words
    assert symbols["audio"].shape == words["audio"].shape and (symbols["audio"] == words["audio"]).all()


def test_each_bad_character_of_a_text_is_named_once_with_its_positions(demo_base):
    from lorakit_voice.task import VoiceCloneTask, VoiceOptions

    with pytest.raises(DataError) as error:
        task = VoiceCloneTask(VoiceOptions(slot="klatt"))
        task.predict(demo_base, demo_base.model, ["Fine.", "It cost 5€ on 3~4~21"])
    assert "text 2: '€' (position 10), '~' (positions 16, 18). Rewrite" in str(error.value)
    assert "text 1" not in str(error.value)


def test_unspeakable_ignores_what_the_cleaner_fixes(demo_base):
    # The demo's english_cleaners lowercases and reads numbers, times and
    # money as words.
    assert unspeakable(demo_base.model, "Hello There, Friend!") == []
    assert unspeakable(demo_base.model, "Mr. Smith paid $5.50 at 9:30 on the 3rd.") == []
    assert unspeakable(demo_base.model, "5 € off") == [(2, "€")]
    # Spelled out before the cleaner, which (given no language, as the
    # tokenizer gives it) would leave "&" and drop it.
    assert unspeakable(demo_base.model, "salt & pepper, 50% off") == []


def test_typographic_quotes_and_dashes_are_spoken_as_plain_ones(demo_base):
    from lorakit_voice.data import plain
    from lorakit_voice.task import VoiceCloneTask, VoiceOptions

    typeset = "It\u2019s \u201cfine\u201d \u2014 really."
    assert unspeakable(demo_base.model, typeset) == [(2, "\u2019"), (5, "\u201c"), (10, "\u201d"), (12, "\u2014")]
    assert plain(typeset) == "It's \"fine\" - really." and unspeakable(demo_base.model, plain(typeset)) == []
    task = VoiceCloneTask(VoiceOptions(slot="klatt"))
    [spoken], [typed] = task.predict(demo_base, demo_base.model, [typeset]), task.predict(demo_base, demo_base.model,
                                                                                          [plain(typeset)])
    assert spoken["audio"].shape == typed["audio"].shape and (spoken["audio"] == typed["audio"]).all()


def test_too_little_audio_says_how_much_is_needed(tmp_path, demo_base):
    folder = write_speaker(tmp_path / "spk", ["The red box is here.", "We found the old map."])
    with pytest.raises(DataError, match=r"holds \d+\.\d s of usable speech in 2 clips; cloning a voice needs at least 30 s"):
        read_speaker(folder, demo_base.model, min_total_seconds=30, show=False)


def test_examples_are_at_the_model_rate_with_their_text(tmp_path, demo_base):
    folder = write_speaker(tmp_path / "spk", ["The red box is here.", "We found the old map."])
    task = VoiceCloneTask(VoiceOptions(min_total_seconds=2, slot="klatt"))
    data = task.load_data(folder, demo_base)
    assert [e.text for e in data.examples] == ["The red box is here.", "We found the old map."]
    assert all(e.sample_rate == 16000 and e.audio.dtype == "float32" for e in data.examples)
    assert data.summary["clips"] == 2 and data.summary["rejected"] == []
    assert task.options.slot == "klatt"  # reading data changes no option


def test_prepare_base_records_the_slot_in_the_options(tmp_path, demo_base):
    """The slot is an option (saved with the adapter), not hidden task state:
    a named slot is checked, and ``auto`` without data is the first slot."""
    from lorakit.api import ConfigError

    folder = write_speaker(tmp_path / "spk", ["The red box is here."])
    task = VoiceCloneTask(VoiceOptions(min_total_seconds=1, slot="klatt"))
    task.prepare_base(demo_base, task.load_data(folder, demo_base))
    assert task.options.slot == "klatt" and task._speaker_id(demo_base) == 2
    opened = VoiceCloneTask(VoiceOptions(slot="auto"))
    opened.prepare_base(demo_base, None)
    assert opened.options.slot == demo_base.model.speaker_manager.speaker_names[0]
    with pytest.raises(ConfigError, match="'nobody' is not a speaker slot of this base; its speakers: low-male"):
        VoiceCloneTask(VoiceOptions(slot="nobody")).prepare_base(demo_base, None)


def test_collate_gives_what_coqui_train_step_reads(tmp_path, demo_base):
    folder = write_speaker(tmp_path / "spk", ["The red box is here.", "We found the old map."])
    task = VoiceCloneTask(VoiceOptions(min_total_seconds=2, slot="klatt"))
    batch = task.collate(demo_base, task.load_data(folder, demo_base).examples)
    for key in ("tokens", "token_lens", "waveform", "spec", "spec_lens", "mel", "speaker_ids"):
        assert key in batch
    assert batch["speaker_ids"].tolist() == [2, 2]
    assert batch["spec"].shape[2] == batch["mel"].shape[2] and batch["waveform"].shape[1] == 1


def test_a_default_slot_is_told_when_it_first_speaks_not_when_loaded(demo_base, monkeypatch):
    """A server loads a base without choosing a voice (each request names
    one): the note on the slot ``auto`` fell back to comes with the first
    sentence spoken, once per process, not at loading."""
    import lorakit_voice.task as voice_task
    from lorakit.api import console

    monkeypatch.setattr(voice_task, "_SLOT_NOTES_TOLD", set())
    task = VoiceCloneTask(VoiceOptions(slot="auto"))
    with console.capture() as loading:
        task.prepare_base(demo_base, None)
    assert "speaker slot" not in loading.get()
    with console.capture() as speaking:
        task.predict(demo_base, demo_base.model, ["Hello there."])
        task.predict(demo_base, demo_base.model, ["Hello again."])
    assert speaking.get().count("speaker slot: 'auto' has no clips to choose by here; using 'low-male'") == 1
    again = VoiceCloneTask(VoiceOptions(slot="auto"))
    again.prepare_base(demo_base, None)
    with console.capture() as later:
        again.predict(demo_base, demo_base.model, ["Hello."])
    assert "speaker slot" not in later.get()
