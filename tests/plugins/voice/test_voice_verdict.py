"""A clone below the bar is said so in words, under the report's table."""

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
