"""The voice-clone task passes lorakit's conformance kit, GAN and all: its
optimizer groups and training step, train/evaluate/export, samples,
stock-peft reload, predict through the CLI, exact resume (discriminator
included) and merged export."""

import pytest

from voice_speakers import SAMPLES

from lorakit.testing import check_task
from lorakit_voice.task import VoiceCloneTask


@pytest.mark.slow
def test_voice_clone_passes_the_conformance_kit(tmp_path):
    spoken = tmp_path / "spoken"
    report = check_task(VoiceCloneTask, data=SAMPLES / "kauko", workdir=tmp_path, steps=2,
                        predict_args=["--text", "Hello there.", "--text", "Where is the car? It was red.",
                                      "--out", str(spoken)])
    assert {"several-optimizers", "command-line-inputs", "writes-samples", "predict-cli",
            "predicts-in-parts"} <= set(report.checks)
    assert report.checks[-1] == "merged-export" and report.merge_difference < 1e-4
    assert [r["text"] for r in report.predictions] == ["Hello there.", "Where is the car? It was red."]
    assert (spoken / "0001.wav").is_file() and (spoken / "0002.wav").is_file()
    assert set(report.metrics["test"]["adapter"]) >= {"speaker_similarity", "mcd", "pitch_gap"}
