"""Fixtures of the caption plugin's tests: tiny image folders made on the fly."""

import json
from pathlib import Path

import pytest
import torch

torch.set_num_threads(2)


def write_png(path: Path, color=(200, 30, 30), size=(16, 16)) -> Path:
    """A small solid-colour PNG at ``path``."""
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, color).save(path)
    return path


@pytest.fixture
def jsonl_folder(tmp_path):
    """A folder of three PNGs described by metadata.jsonl."""
    folder = tmp_path / "data"
    rows = [("red.png", "a red square", (220, 30, 30)), ("green.png", "a green square", (30, 200, 30)),
            ("blue.png", "a blue square", (30, 30, 220))]
    for name, _, color in rows:
        write_png(folder / name, color)
    lines = [json.dumps({"file_name": name, "text": text}) for name, text, _ in rows]
    (folder / "metadata.jsonl").write_text("\n".join(lines) + "\n")
    return folder


@pytest.fixture(scope="session")
def demo_base():
    """The committed demo base, loaded once for the session."""
    from lorakit_caption.task import CaptionTask

    return CaptionTask().load_base("demo")
