"""Fixtures of the caption plugin's tests: tiny image folders made on the fly."""

import json

import pytest
from caption_images import write_png  # noqa: F401 (used by fixtures here)


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
