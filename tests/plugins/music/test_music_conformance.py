"""The music-style task passes lorakit's conformance kit: train/evaluate/export,
samples, stock-peft reload, predict through the CLI (--prompt), exact resume
and merged export (the core's save_pretrained)."""

import pytest

from music_tracks import SAMPLES

from lorakit.testing import check_task
from lorakit_music.task import MusicStyleTask


@pytest.mark.slow
def test_music_style_passes_the_conformance_kit(tmp_path):
    clips = tmp_path / "clips"
    report = check_task(MusicStyleTask, data=SAMPLES / "chiptune", workdir=tmp_path, steps=2,
                        flags=["--window_seconds", "4", "--seconds", "0.3", "--samples", "1"],
                        predict_args=["--prompt", "retro chiptune melody", "--prompt", "calm piano", "--out", str(clips)])
    assert {"command-line-inputs", "writes-samples", "predict-cli"} <= set(report.checks)
    assert report.checks[-1] == "merged-export" and report.merge_difference < 1e-4
    assert [r["prompt"] for r in report.predictions] == ["retro chiptune melody", "calm piano"]
    assert (clips / "0002.wav").is_file()
    assert set(report.metrics["test"]["adapter"]) == {"nll", "perplexity"}
