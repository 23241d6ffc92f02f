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


def test_unavailable_clip_names_the_options():
    with pytest.raises(BaseModelError, match="demo"):
        ClipScorer.load("no-such-clip-model:nothing")


def test_caption_evaluation_reports_clipscore():
    from lorakit_caption.task import CaptionOptions, CaptionTask

    task = CaptionTask(CaptionOptions(clip="demo"))
    base = task.load_base("demo")
    examples = task.load_data(CATALOG).examples[:8]
    scores = task.evaluate(base, base.model, examples)
    images = [e.image for e in examples]
    captions = [p["caption"] for p in task.predict(base, base.model, images)]
    expected = sum(ClipScorer.load("demo").scores(images, captions)) / len(images)
    assert set(scores) == {"cider", "bleu4", "clip_score"} and scores["clip_score"] == pytest.approx(expected)
    assert scores["clip_score"] > 0


@pytest.mark.slow
def test_make_clip_quick(tmp_path):
    subprocess.run([sys.executable, "-m", "lorakit_caption.make_clip", "--out", str(tmp_path / "clip"), "--quick"],
                   check=True, capture_output=True)
    import open_clip

    from lorakit_caption.clip import DEMO_NAME

    open_clip.add_model_config(tmp_path / "clip" / f"{DEMO_NAME}.json")  # as ClipScorer.load("demo") does
    scorer = ClipScorer.load(f"{DEMO_NAME}:{tmp_path / 'clip' / 'model.safetensors'}")
    scores = scorer.scores([str(CATALOG / "catalog_0000.png")], ["a red star"])
    assert len(scores) == 1 and 0.0 <= scores[0] <= 2.5
