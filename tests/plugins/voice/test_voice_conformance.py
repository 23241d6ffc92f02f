"""The voice-clone task passes lorakit's conformance kit, GAN and all:
train/evaluate/export, stock-peft reload, exact resume (discriminator
included) and merged export."""

from voice_speakers import SAMPLES

from lorakit.testing import check_task
from lorakit_voice.task import VoiceCloneTask


def test_voice_clone_passes_the_conformance_kit(tmp_path):
    report = check_task(VoiceCloneTask, data=SAMPLES / "kauko", workdir=tmp_path, steps=2)
    assert report.checks[-1] == "merged-export" and report.merge_difference < 1e-4
    assert set(report.metrics["test"]["adapter"]) >= {"speaker_similarity", "mcd"}
