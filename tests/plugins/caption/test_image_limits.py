"""Decompression bombs: training refuses them by name, batch captioning records them and goes on."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from caption_images import write_bomb_png

REPO = Path(__file__).resolve().parents[3]


def _lorakit(*args: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "lorakit", *args], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "OMP_NUM_THREADS": "1", **env})


def _catalog_with_bomb(tmp_path: Path) -> Path:
    folder = tmp_path / "photos"
    shutil.copytree(REPO / "samples/caption/catalog", folder)
    write_bomb_png(folder / "catalog_0003.png")  # one of the captioned images, replaced
    return folder


def test_training_refuses_a_decompression_bomb_naming_the_file_and_the_setting(tmp_path):
    folder = _catalog_with_bomb(tmp_path)
    result = _lorakit("train", "caption", "--data", str(folder), "--base", "demo", "--output", str(tmp_path / "run"))
    assert result.returncode != 0 and "Traceback" not in result.stderr
    assert "catalog_0003.png" in result.stderr and "30000x30000" in result.stderr
    assert "LORAKIT_MAX_IMAGE_PIXELS" in result.stderr
    assert not (tmp_path / "run").exists()


@pytest.mark.slow
def test_the_limit_can_be_set_on_purpose(tmp_path):
    folder = tmp_path / "photos"
    shutil.copytree(REPO / "samples/caption/catalog", folder)
    result = _lorakit("train", "caption", "--data", str(folder), "--base", "demo", "--output", str(tmp_path / "run"),
                      LORAKIT_MAX_IMAGE_PIXELS="1000")
    assert result.returncode != 0 and "limit 1,000" in result.stderr and "Traceback" not in result.stderr


def test_batch_captioning_records_a_bomb_and_captions_the_rest(tmp_path):
    folder = _catalog_with_bomb(tmp_path)
    out = tmp_path / "c.jsonl"
    result = _lorakit("caption", str(folder), "--out", str(out))
    assert "Traceback" not in result.stderr
    errors = [json.loads(line) for line in (tmp_path / "c.errors.jsonl").read_text().splitlines()]
    assert [Path(e["image"]).name for e in errors] == ["catalog_0003.png"] and "too large" in errors[0]["error"]
    captioned = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(captioned) == len(list(folder.glob("*.png"))) - 1
