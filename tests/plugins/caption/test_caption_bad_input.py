"""`lorakit train caption` on bad input, as a user runs it: caption files that
are not UTF-8 (Latin-1 bytes from an old editor), a base whose .bin weights
hold code. One message naming the file (and line), no traceback, no run
folder, and the code never runs."""

import shutil

import pytest
from PIL import Image

from cli_failure import Payload, fails_cleanly
from lorakit_caption.task import DEMO_BASE

# One subprocess per case, several seconds each; tests/badinput covers the same kinds in the slow step too.
pytestmark = pytest.mark.slow

#: file name -> its text; the second caption has an é, written as Latin-1.
LAYOUTS = {
    "metadata.csv": {"metadata.csv": "file_name,text\na.png,a red square\nb.png,a café sign\n"},
    "metadata.jsonl": {"metadata.jsonl": '{"file_name": "a.png", "text": "a red square"}\n'
                                         '{"file_name": "b.png", "text": "a café sign"}\n'},
    "sidecar .txt": {"a.txt": "a red square", "b.txt": "a café sign"},
}
BAD_LINE = {"metadata.csv": "metadata.csv:3", "metadata.jsonl": "metadata.jsonl:2", "sidecar .txt": "b.txt:1"}


@pytest.mark.parametrize("layout", LAYOUTS)
def test_latin_1_captions_are_named_with_file_and_line(tmp_path, layout):
    folder = tmp_path / "photos"
    folder.mkdir()
    for name in ("a.png", "b.png"):
        Image.new("RGB", (16, 16), (200, 10, 10)).save(folder / name)
    for name, text in LAYOUTS[layout].items():
        (folder / name).write_bytes(text.encode("latin-1"))
    fails_cleanly("train", "caption", "--data", folder, "--base", "demo", "--output", tmp_path / "run",
                  names=(str(folder / BAD_LINE[layout]), "not UTF-8", "save it as UTF-8"))
    assert not (tmp_path / "run").exists()



def test_a_base_whose_bin_weights_hold_code_is_refused_and_not_run(tmp_path):
    """transformers reads pytorch_model.bin with torch's weights_only loading;
    its refusal becomes one line naming the file."""
    import torch

    base = tmp_path / "base"
    shutil.copytree(DEMO_BASE, base)
    (base / "model.safetensors").unlink()
    marker = tmp_path / "code-ran"
    torch.save({"text_decoder.bias": Payload(marker)}, base / "pytorch_model.bin")
    folder = tmp_path / "photos"
    folder.mkdir()
    Image.new("RGB", (16, 16)).save(folder / "a.png")
    (folder / "a.txt").write_text("a black square")
    message = fails_cleanly("train", "caption", "--data", folder, "--base", base, "--output", tmp_path / "run",
                            names=(str(base / "pytorch_model.bin"), "holds code or Python objects", "will not load",
                                   "save_pretrained"))
    assert "weights_only=False" not in message
    assert not marker.exists() and not (tmp_path / "run").exists()
