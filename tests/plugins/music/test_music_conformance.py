"""The music-style task passes lorakit's conformance kit: train/evaluate/export,
stock-peft reload, exact resume and merged export."""

from music_tracks import SAMPLES

from lorakit.testing import check_task
from lorakit_music.task import MusicStyleTask


def test_music_style_passes_the_conformance_kit(tmp_path):
    report = check_task(MusicStyleTask, data=SAMPLES / "chiptune", workdir=tmp_path, steps=2,
                        flags=["--window_seconds", "4", "--seconds", "0.3", "--samples", "1"])
    assert report.checks[-1] == "merged-export" and report.merge_difference < 1e-4
    assert set(report.metrics["test"]["adapter"]) == {"nll", "perplexity"}
