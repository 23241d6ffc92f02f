"""The demo CLIP and CLIPScore: matched pairs score above shuffled ones."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import lorakit_caption
from lorakit.errors import BaseModelError
from lorakit_caption.clip import DEMO_CLIP, ClipScorer

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


def _demo_scores(spec):
    rows = [json.loads(line) for line in (CATALOG / "metadata.jsonl").read_text().splitlines()[:6]]
    return ClipScorer.load(spec).scores([str(CATALOG / r["file_name"]) for r in rows], [r["text"] for r in rows])


def test_a_clip_folder_loads_its_safetensors_and_never_a_pickle(tmp_path):
    folder = tmp_path / "clip"
    folder.mkdir()
    shutil.copy(DEMO_CLIP / "open_clip_config.json", folder)
    # open_clip itself would prefer this name over model.safetensors and unpickle it: junk, so loading it fails.
    (folder / "open_clip_pytorch_model.bin").write_bytes(b"not a checkpoint")
    shutil.copy(DEMO_CLIP / "open_clip_model.safetensors", folder / "model.safetensors")
    assert _demo_scores(str(folder)) == _demo_scores("demo")


def test_clip_folder_mistakes_name_the_folder_and_the_fix(tmp_path):
    folder = tmp_path / "clip"
    folder.mkdir()
    with pytest.raises(BaseModelError, match="has no open_clip_config.json.*open_clip_model.safetensors"):
        ClipScorer.load(str(folder))
    shutil.copy(DEMO_CLIP / "open_clip_config.json", folder)
    (folder / "open_clip_pytorch_model.bin").write_bytes(b"pickled")
    with pytest.raises(BaseModelError, match=r"holds open_clip_pytorch_model.bin; only .safetensors"):
        ClipScorer.load(str(folder))
    config = json.loads((DEMO_CLIP / "open_clip_config.json").read_text())
    config["model_cfg"]["embed_dim"] = 32
    (folder / "open_clip_config.json").write_text(json.dumps(config))
    shutil.copy(DEMO_CLIP / "open_clip_model.safetensors", folder)
    with pytest.raises(BaseModelError, match="must describe one model"):
        ClipScorer.load(str(folder))
    with pytest.raises(BaseModelError, match="no such folder"):
        ClipScorer.load(str(tmp_path / "missing"))
    with pytest.raises(BaseModelError, match="needs its model's name, e.g. ViT-B-32:"):
        ClipScorer.load(str(folder / "open_clip_model.safetensors"))
    shutil.copy(DEMO_CLIP / "open_clip_config.json", folder)
    whole = (DEMO_CLIP / "open_clip_model.safetensors").read_bytes()
    (folder / "open_clip_model.safetensors").write_bytes(whole[:1000])  # a copy cut short
    with pytest.raises(BaseModelError, match="open_clip_model.safetensors is not a complete safetensors file"):
        ClipScorer.load(str(folder))


@pytest.mark.slow
def test_make_clip_quick(tmp_path):
    subprocess.run([sys.executable, "-m", "lorakit_caption.make_clip", "--out", str(tmp_path / "clip"), "--quick"],
                   check=True, capture_output=True)
    scorer = ClipScorer.load(str(tmp_path / "clip"))  # --clip FOLDER reads what make_clip writes
    scores = scorer.scores([str(CATALOG / "catalog_0000.png")], ["a red star"])
    assert len(scores) == 1 and 0.0 <= scores[0] <= 2.5
