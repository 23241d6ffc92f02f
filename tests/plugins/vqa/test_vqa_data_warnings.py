"""No silently wrong VQA data: nothing outside the folder, transparent images named."""

import json

import numpy as np
import pytest
from PIL import Image

from lorakit.api import DataError
from lorakit_vqa.data import read_vqa_folder


def _folder(tmp_path):
    folder = tmp_path / "data"
    folder.mkdir()
    Image.new("RGB", (8, 8), (200, 10, 10)).save(folder / "a.png")
    row = {"image": "a.png", "question": "what colour?", "answer": "red"}
    (folder / "questions.jsonl").write_text(json.dumps(row) + "\n")
    return folder


def test_an_image_symlinked_from_outside_is_refused(tmp_path):
    folder = _folder(tmp_path)
    Image.new("RGB", (8, 8)).save(tmp_path / "private.png")
    (folder / "a.png").unlink()
    (folder / "a.png").symlink_to(tmp_path / "private.png")
    with pytest.raises(DataError, match="points outside the data folder") as error:
        read_vqa_folder(folder)
    assert "questions.jsonl:1" in str(error.value) and "a.png" in str(error.value)


def test_questions_linked_from_outside_are_refused(tmp_path):
    folder = _folder(tmp_path)
    (folder / "questions.jsonl").rename(tmp_path / "questions.jsonl")
    (folder / "questions.jsonl").symlink_to(tmp_path / "questions.jsonl")
    with pytest.raises(DataError, match="points outside the data folder") as error:
        read_vqa_folder(folder)
    assert str(folder / "questions.jsonl") in str(error.value)


def test_a_transparent_image_is_used_with_a_warning(tmp_path, capsys):
    folder = _folder(tmp_path)
    rgba = np.zeros((8, 8, 4), np.uint8)
    rgba[:, :2, 3] = 255
    Image.fromarray(rgba, "RGBA").save(folder / "a.png")
    assert len(read_vqa_folder(folder)) == 1
    (line,) = [line for line in capsys.readouterr().err.splitlines() if line.startswith("warning:")]
    assert str(folder / "a.png") in line and "75%" in line
