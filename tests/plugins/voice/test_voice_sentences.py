"""Texts are spoken sentence by sentence: a long text costs what its longest sentence costs."""

import numpy as np

from lorakit_voice.sentences import MAX_PART_CHARS, split_sentences
from lorakit_voice.synthesis import SENTENCE_PAUSE_SECONDS


def test_sentences_are_cut_where_they_end_not_at_abbreviations_or_decimals():
    text = "Dr. Smith lives at 221B Baker St. in London.  It cost $5.50!\nReally?"
    assert split_sentences(text) == ["Dr. Smith lives at 221B Baker St. in London.", "It cost $5.50!", "Really?"]


def test_sentences_are_found_with_the_rules_of_the_voices_language():
    """A German Piper voice (espeak-ng "de") reads "z. B." and "am 3. Mai"
    inside one sentence; English rules would end sentences there."""
    from types import SimpleNamespace

    from lorakit_voice.data import base_language

    german = SimpleNamespace(config=SimpleNamespace(use_phonemes=True, phoneme_language="de"))
    text = "Das ist z. B. gut. Am 3. Mai kam er."
    assert split_sentences(text, language=base_language(german)) == ["Das ist z. B. gut.", "Am 3. Mai kam er."]
    assert len(split_sentences(text, language="en-us")) == 4
    assert split_sentences("One. Two.", language="tlh") == ["One.", "Two."]  # no rules of its own: English


def test_a_sentence_over_the_limit_is_cut_at_clauses_then_spaces_and_loses_no_word():
    clauses = ", ".join(f"then the {i}th clause went on" for i in range(30)) + "."
    words = " ".join(f"word{i}" for i in range(150))
    for text, cut_after in ((clauses, ","), (words, None)):
        parts = split_sentences(text)
        assert len(parts) > 1 and all(len(p) <= MAX_PART_CHARS for p in parts)
        assert " ".join(parts) == text
        if cut_after:
            assert all(p.endswith(cut_after) for p in parts[:-1])


def test_nothing_to_say_is_no_sentence():
    assert split_sentences(" \n\t ") == []


def test_predict_speaks_each_sentence_as_alone_joined_by_a_pause(demo_base):
    from lorakit_voice.task import VoiceCloneTask, VoiceOptions

    task = VoiceCloneTask(VoiceOptions(slot="klatt"))
    sentences = ["The old man found a red box.", "A young girl opened the door!", "Was it late?"]
    [together] = task.predict(demo_base, demo_base.model, [" ".join(sentences)])
    alone = [r["audio"] for r in task.predict(demo_base, demo_base.model, sentences)]
    pause = np.zeros(round(SENTENCE_PAUSE_SECONDS * together["sample_rate"]), dtype=np.float32)
    expected = np.concatenate([alone[0], pause, alone[1], pause, alone[2]])
    assert together["audio"].shape == expected.shape
    np.testing.assert_allclose(together["audio"], expected, atol=1e-5)


def test_a_bar_counts_the_sentences_for_lorakit_predict_only(demo_base, monkeypatch):
    """`lorakit predict` on a long text shows how far it is; the server,
    which calls the same predict, draws nothing."""
    import io

    from rich.console import Console

    from lorakit import progress
    from lorakit_voice.task import VoiceCloneTask, VoiceOptions

    screen = io.StringIO()
    monkeypatch.setattr(progress, "console", Console(file=screen, force_terminal=True, width=100))
    task = VoiceCloneTask(VoiceOptions(slot="low-male"))
    text = ["The door was open. Nobody came in.", "It rained all day."]
    task.predict(demo_base, demo_base.model, text)
    assert "speaking" not in screen.getvalue()
    with progress.watched():
        task.predict(demo_base, demo_base.model, text)
    assert "speaking" in screen.getvalue() and "3/3" in screen.getvalue()


def test_a_text_spoken_part_by_part_is_the_text_spoken_whole(demo_base):
    """The parts a server streams one by one (input_parts), spoken alone and
    joined by the task's gap, are what predict speaks for the whole text:
    symbols spelled out, cut as predict cuts."""
    import pytest

    from lorakit.api import DataError
    from lorakit_voice.task import VoiceCloneTask, VoiceOptions

    task = VoiceCloneTask(VoiceOptions(slot="klatt"))
    text = "Prices fell 50% at Tom & Jerry's.  Was it late?\nYes!"
    parts = task.input_parts(demo_base, text)
    assert parts == ["Prices fell 50 percent at Tom and Jerry's.", "Was it late?", "Yes!"]
    [whole] = task.predict(demo_base, demo_base.model, [text])
    alone = [r["audio"] for r in task.predict(demo_base, demo_base.model, parts)]
    gap = np.zeros(round(task.part_gap_seconds * whole["sample_rate"]), dtype=np.float32)
    np.testing.assert_array_equal(whole["audio"], np.concatenate([alone[0], gap, alone[1], gap, alone[2]]))
    with pytest.raises(DataError, match=r"cannot speak: text: '€' \(position 11\)"):
        task.input_parts(demo_base, "It costs 5€.")
    with pytest.raises(DataError, match="nothing to say"):
        task.input_parts(demo_base, " \n ")
