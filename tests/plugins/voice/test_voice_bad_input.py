"""`lorakit train voice-clone` on bad input, as a user runs it: a transcript
file that is not UTF-8, a base checkpoint with code in it. One message naming
the file, no traceback, no output folder, and the code never runs."""

import pickle

import pytest
import torch
from voice_speakers import write_speaker

from cli_failure import Payload, fails_cleanly
from lorakit_voice.base import DEMO_BASE

# One subprocess per case, several seconds each; tests/badinput covers the same kinds in the slow step too.
pytestmark = pytest.mark.slow

TEXTS = ["The red box is here.", "A cafe near the river."]



def _train(tmp_path, data, base="demo", names=()) -> str:
    message = fails_cleanly("train", "voice-clone", "--data", data, "--base", base, "--output", tmp_path / "run",
                            names=names)
    assert not (tmp_path / "run").exists()
    return message


def test_latin_1_metadata_csv_is_named_with_its_line(tmp_path):
    folder = write_speaker(tmp_path / "spk", TEXTS)
    (folder / "metadata.csv").write_bytes("001|The red box is here.|\n002|A café near the river.|\n".encode("latin-1"))
    _train(tmp_path, folder, names=(f"{folder / 'metadata.csv'}:2", "not UTF-8", "save it as UTF-8"))


def test_latin_1_sidecar_transcript_is_named(tmp_path):
    folder = write_speaker(tmp_path / "spk", TEXTS)
    (folder / "metadata.csv").unlink()
    (folder / "001.txt").write_text(TEXTS[0], encoding="utf-8")
    (folder / "002.txt").write_bytes("A café near the river.".encode("latin-1"))
    _train(tmp_path, folder, names=(f"{folder / '002.txt'}:1", "not UTF-8", "save it as UTF-8"))


@pytest.mark.parametrize("save", [torch.save, lambda obj, path: path.write_bytes(pickle.dumps(obj))],
                         ids=["torch.save", "pickle"])
def test_a_base_checkpoint_with_code_is_refused_and_not_run(tmp_path, save):
    folder = write_speaker(tmp_path / "spk", TEXTS)
    base = tmp_path / "base"
    base.mkdir()
    (base / "config.json").write_text((DEMO_BASE / "config.json").read_text())
    marker = tmp_path / "code-ran"
    save({"model": Payload(marker)}, base / "model.pth")
    # torch names the code in a torch.save file; a plain pickle it refuses unread.
    message = _train(tmp_path, folder, base=base, names=(str(base / "model.pth"), "code or Python objects",
                                                         "will not load", "state_dict"))
    assert "weights_only=False" not in message
    assert not marker.exists()
