"""A clone below the bar is said so in words, under the report's table."""

import copy

from lorakit.api import Base
from lorakit.cli import print_report
from lorakit_voice.task import VoiceCloneTask

BASE = {"speaker_similarity": 0.55, "mcd": 8.4, "base_voice_similarity": 0.93, "rtf": 0.1}


def test_a_clone_that_stays_near_the_base_voice_is_below_the_bar():
    adapter = {"speaker_similarity": 0.58, "mcd": 8.0, "base_voice_similarity": 0.83, "rtf": 0.1}
    [verdict] = VoiceCloneTask().judge(BASE, adapter)
    assert "gained only +0.03" in verdict and "more like the base voice (0.83)" in verdict
    assert "--train.max_steps" in verdict and "--lora.r" in verdict


def test_a_gain_that_still_sounds_like_the_base_is_below_the_bar():
    adapter = {"speaker_similarity": 0.70, "mcd": 8.0, "base_voice_similarity": 0.75, "rtf": 0.1}
    [verdict] = VoiceCloneTask().judge(BASE, adapter)
    assert "gained only" not in verdict and "more like the base voice (0.75) than like the target (0.70)" in verdict


def test_a_real_clone_gets_no_warning():
    adapter = {"speaker_similarity": 0.72, "mcd": 7.0, "base_voice_similarity": 0.45, "rtf": 0.1}
    assert VoiceCloneTask().judge(BASE, adapter) == []


def test_the_report_prints_the_verdict_under_its_table(capsys):
    adapter = {"speaker_similarity": 0.58, "mcd": 8.0, "base_voice_similarity": 0.83, "rtf": 0.1}
    report = {"test": {"examples": 6, "base": BASE, "adapter": adapter,
                       "verdict": VoiceCloneTask().judge(BASE, adapter)}}
    print_report(report)
    out = capsys.readouterr()
    assert "below the bar:" in out.out + out.err and "gained only +0.03" in out.out + out.err


def test_a_clone_far_from_the_speakers_pitch_is_said_so_apart_from_similarity():
    """Timbre can pass while the register does not (a base that renders
    one pitch): the pitch gets its own line and its own advice."""
    base = {**BASE, "pitch_gap": 10.9}
    adapter = {"speaker_similarity": 0.72, "mcd": 7.0, "base_voice_similarity": 0.45, "pitch_gap": 14.9, "rtf": 0.1}
    [verdict] = VoiceCloneTask().judge(base, adapter)
    assert verdict.startswith("the clone speaks 14.9 semitones from the speaker's pitch (the base 10.9)")
    assert "--slot NAME" in verdict and "--lora.r" not in verdict
    near = {**adapter, "pitch_gap": 3.4}
    assert VoiceCloneTask().judge(base, near) == []
    unmeasured = {**adapter, "pitch_gap": float("nan")}  # no voiced frame found
    assert VoiceCloneTask().judge(base, unmeasured) == []
    both = {**adapter, "speaker_similarity": 0.56}
    assert [line.split(" ")[1] for line in VoiceCloneTask().judge(base, both)] == ["clone", "clone"]


def test_a_single_speaker_base_gets_no_slot_advice(demo_base):
    """A Piper voice has one speaker: --slot would only be refused."""
    base = {**BASE, "pitch_gap": 18.2}
    adapter = {"speaker_similarity": 0.55, "mcd": 8.0, "base_voice_similarity": 0.46, "pitch_gap": 19.6, "rtf": 0.1}
    several = VoiceCloneTask()
    several.prepare_base(demo_base, None)  # three speaker slots
    assert all("--slot NAME" in line for line in several.judge(base, adapter))
    single = VoiceCloneTask()
    one_voice = copy.copy(demo_base.model)
    one_voice.speaker_manager = None  # as a Piper voice is loaded
    single.prepare_base(Base(model=one_voice, processor=None, name="one-voice"), None)
    lines = single.judge(base, adapter)
    assert len(lines) == 2 and not any("slot" in line for line in lines)
    assert "a larger rank (--lora.r 16); listen" in lines[0]
    assert "Try a base whose voice is nearer the speaker's pitch" in lines[1]


def test_a_clone_whose_words_are_lost_is_said_so_whatever_its_similarity():
    """A clone can sound like the speaker and say nothing Whisper can hear;
    measured against the base (a small base is itself hard to hear) and the
    speaker's own recordings (a faithful clone of a speaker Whisper mishears
    is misheard too)."""
    clone = {"speaker_similarity": 0.72, "mcd": 7.0, "base_voice_similarity": 0.45, "rtf": 0.1}
    [verdict] = VoiceCloneTask().judge({**BASE, "wer": 0.0}, {**clone, "wer": 1.0, "speaker_wer": 0.81})
    assert verdict.startswith("the clone is hard to understand: Whisper missed 100% of the held-out words (the "
                              "base 0%, the speaker's own recordings 81%)")
    assert "--train.lr" in verdict and "--lora.targets" in verdict
    assert VoiceCloneTask().judge({**BASE, "wer": 0.0}, {**clone, "wer": 0.4, "speaker_wer": 0.81}) == []
    assert VoiceCloneTask().judge({**BASE, "wer": 0.9}, {**clone, "wer": 0.8, "speaker_wer": 0.1}) == []  # tiny base
    assert VoiceCloneTask().judge({**BASE, "wer": 0.05}, {**clone, "wer": 0.2, "speaker_wer": 0.0}) == []
    assert VoiceCloneTask().judge(BASE, {**clone, "wer": 1.0, "speaker_wer": 0.0}) == []  # nothing to compare with
