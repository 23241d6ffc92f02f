"""The demo CLIP and CLIPScore: matched pairs score above shuffled ones."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

import lorakit_caption
from lorakit.errors import BaseModelError
from lorakit_caption.clip import ClipScorer

CATALOG = Path(lorakit_caption.__file__).parent / "samples" / "catalog"


def test_demo_clip_separates_matched_from_shuffled_pairs():
    rows = [json.loads(line) for line in (CATALOG / "metadata.jsonl").read_text().splitlines()[:40]]
    paths, captions = [str(CATALOG / r["file_name"]) for r in rows], [r["text"] for r in rows]
    scorer = ClipScorer.load("demo")
    matched = scorer.scores(paths, captions)
    shuffled = scorer.scores(paths, captions[7:] + captions[:7])
    assert sum(matched) / 40 > sum(shuffled) / 40 + 1.0
    assert all(0.0 <= s <= 2.5 for s in matched)


def test_unavailable_clip_names_the_options():
    with pytest.raises(BaseModelError, match="demo"):
        ClipScorer.load("no-such-clip-model:nothing")


def test_caption_evaluation_reports_clipscore():
    from lorakit_caption.task import CaptionOptions, CaptionTask

    task = CaptionTask(CaptionOptions(clip="demo"))
    base = task.load_base("demo")
    examples = task.load_data(CATALOG).examples[:8]
    scores = task.evaluate(base, base.model, examples)
    assert set(scores) == {"cider", "bleu4", "clip_score"} and scores["clip_score"] >= 0


@pytest.mark.slow
def test_make_clip_quick(tmp_path):
    subprocess.run([sys.executable, "-m", "lorakit_caption.make_clip", "--out", str(tmp_path / "clip"), "--quick"],
                   check=True, capture_output=True)
    assert (tmp_path / "clip" / "model.safetensors").is_file()
