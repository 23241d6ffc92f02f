"""make_demo --quick builds a coqui checkpoint folder the task loads; the
committed demo base and sample speaker are what the README promises."""

from pathlib import Path

import pytest

from lorakit_voice import make_demo, synthetic
from lorakit_voice.base import DEMO_BASE, load_vits

REPO = Path(__file__).resolve().parents[3]


@pytest.mark.slow
def test_quick_demo_builds_a_loadable_checkpoint(tmp_path):
    make_demo.main(["--out", str(tmp_path), "--quick"])
    assert (tmp_path / "model.pth").is_file() and (tmp_path / "config.json").is_file()
    loaded = load_vits(str(tmp_path))
    names = [voice.name for voice in synthetic.BASE_VOICES]
    assert loaded.model.speaker_manager.speaker_names == names and loaded.discriminator is None


def test_committed_demo_base_is_small():
    size = sum(p.stat().st_size for p in DEMO_BASE.iterdir())
    assert (DEMO_BASE / "config.json").is_file() and size < 8_000_000


def test_sample_speaker_is_an_unseen_voice_with_enough_audio():
    from lorakit.api import prepare_folder

    folder = REPO / "samples" / "voice" / synthetic.SAMPLE_VOICE.name
    assert synthetic.SAMPLE_VOICE.name not in [voice.name for voice in synthetic.BASE_VOICES]
    assert prepare_folder(folder, 16000).seconds >= 45


def test_sentences_are_seeded_and_distinct():
    assert synthetic.sentences(20, 3) == synthetic.sentences(20, 3)
    assert len(set(synthetic.sentences(50, 1))) == 50
