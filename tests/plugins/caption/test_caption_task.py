"""The caption task on the committed demo base: options, base loading,
collate, probe, evaluate/predict. Learning through lorakit's own loop is
tested in test_caption_run.py."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from caption_images import write_png

import lorakit_caption
from lorakit.errors import BaseModelError, ConfigError, DataError
from lorakit_caption.data import CaptionExample
from lorakit_caption.task import CaptionOptions, CaptionTask

SAMPLES = Path(lorakit_caption.__file__).parent / "samples"
CATALOG = SAMPLES / "catalog"


def test_plugin_registers_the_task():
    import lorakit_caption

    registered = []
    lorakit_caption.register_tasks(register=registered.append)
    assert registered == [CaptionTask] and CaptionTask.name == "caption"
    assert list(CaptionTask.metrics) == ["cider", "bleu4"]


def test_clip_score_is_an_optional_metric_whose_higher_is_better():
    """Present only with --clip: reports colour it, and --train.metric may watch it."""
    assert "clip_score" not in CaptionTask.metrics
    assert CaptionTask.metric_directions() == {"cider": "max", "bleu4": "max", "clip_score": "max"}


@pytest.mark.parametrize("field, value", [("max_new_tokens", 0), ("num_beams", "many"), ("trigger", 3), ("num_beams", True)])
def test_bad_options_name_the_field(field, value):
    with pytest.raises(ConfigError, match=field):
        CaptionOptions(**{field: value})


def test_options_accept_numeric_text():
    assert CaptionOptions(num_beams="3", trigger="  sks ").num_beams == 3
    assert CaptionTask(CaptionOptions(trigger="sks")).trigger_words() == ["sks"]


def test_missing_base_folder_names_the_options(tmp_path):
    with pytest.raises(BaseModelError, match="demo"):
        CaptionTask().load_base(str(tmp_path / "missing"))


def test_folder_without_config(tmp_path):
    with pytest.raises(BaseModelError, match="config.json"):
        CaptionTask().load_base(str(tmp_path))


def test_non_captioning_model_is_refused(tmp_path):
    from transformers import BertConfig

    BertConfig(hidden_size=8, num_hidden_layers=1, num_attention_heads=1, intermediate_size=8).save_pretrained(tmp_path)
    with pytest.raises(BaseModelError, match="not a BLIP captioning model"):
        CaptionTask().load_base(str(tmp_path))


def test_offline_hub_id_names_the_options():
    # A subprocess, because the hub's offline switch is read at import time.
    code = (
        "from lorakit_caption.task import CaptionTask\n"
        "from lorakit.errors import BaseModelError\n"
        "try:\n    CaptionTask().load_base('lorakit-tests/no-such-blip')\n"
        "except BaseModelError as e:\n    print(e)\n"
    )
    env = dict(os.environ, HF_HUB_OFFLINE="1")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120).stdout
    assert "--base demo" in out and "config.json" in out and "hub id" in out


def _examples(n=4):
    lines = (CATALOG / "metadata.jsonl").read_text().splitlines()[:n]
    import json

    return [CaptionExample(str(CATALOG / r["file_name"]), r["text"]) for r in map(json.loads, lines)]


def test_collate_labels_start_with_bos_and_mask_padding(demo_base):
    examples = _examples(2) + [CaptionExample(_examples(1)[0].image, "a much longer caption than the others here")]
    batch = CaptionTask().collate(demo_base, examples)
    bos = demo_base.model.config.text_config.bos_token_id
    assert batch["pixel_values"].shape == (3, 3, 64, 64)
    assert (batch["input_ids"][:, 0] == bos).all() and (batch["labels"][:, 0] == bos).all()
    padding = batch["attention_mask"] == 0
    assert padding[0].any() and (batch["labels"][padding] == -100).all()
    assert (batch["labels"][~padding] != -100).all()


def test_trigger_is_given_not_learned(demo_base):
    plain = CaptionTask().collate(demo_base, _examples(1))
    triggered = CaptionTask(CaptionOptions(trigger="sks")).collate(demo_base, _examples(1))
    extra = triggered["input_ids"].shape[1] - plain["input_ids"].shape[1]
    assert extra >= 1
    assert (triggered["labels"][0, 1 : 1 + extra] == -100).all()
    assert torch.equal(triggered["labels"][0, 1 + extra :], plain["labels"][0, 1:])


def test_probe_is_deterministic_and_survives_a_merge(demo_base):
    import copy

    from peft import LoraConfig, get_peft_model

    task = CaptionTask()
    first, second = task.probe(demo_base, demo_base.model), task.probe(demo_base, demo_base.model)
    assert torch.equal(first, second)
    config = LoraConfig(r=4, target_modules=list(task.lora_targets), init_lora_weights=False)
    model = get_peft_model(copy.deepcopy(demo_base.model), config)
    unmerged = task.probe(demo_base, model)
    assert not torch.allclose(unmerged, first)
    merged = task.probe(demo_base, model.merge_and_unload())
    assert torch.allclose(unmerged, merged, atol=1e-4)


def test_evaluate_scores_each_image_once_against_all_its_references(demo_base):
    from lorakit_caption.metrics import caption_scores

    task = CaptionTask(CaptionOptions(prompt="a", max_new_tokens=8))
    # References in the words the demo base says ("large a large a ..."), so that scores are not all 0.
    images = [e.image for e in _examples(4)]
    references = [["a large circle on a large square", "large a large circle"], ["a small star"],
                  ["large a large a large"], ["a large ring on black"]]
    examples = [CaptionExample(image, text) for image, texts in zip(images, references) for text in texts]
    scores = task.evaluate(demo_base, demo_base.model, examples)
    predictions = task.predict(demo_base, demo_base.model, images)
    assert [p["image"] for p in predictions] == images
    captions = [p["caption"] for p in predictions]
    assert scores == pytest.approx(caption_scores(captions, references))
    assert scores["cider"] > 0.1 and scores["bleu4"] > 0


def test_samples_show_each_held_out_image_with_its_caption_and_references(demo_base, tmp_path):
    from PIL import Image

    task = CaptionTask(CaptionOptions(max_new_tokens=8))
    examples = _examples(3)
    examples.append(CaptionExample(examples[0].image, "another caption of the first image"))
    task.write_samples(demo_base, demo_base.model, examples, tmp_path / "samples")
    assert sorted(p.name for p in (tmp_path / "samples").iterdir()) == ["01.jpg", "01.txt", "02.jpg", "02.txt",
                                                                         "03.jpg", "03.txt"]
    first = (tmp_path / "samples" / "01.txt").read_text().splitlines()
    caption = task.predict(demo_base, demo_base.model, [examples[0].image])[0]["caption"]
    assert first == [caption, f"reference: {examples[0].text} | another caption of the first image"]
    picture = Image.open(tmp_path / "samples" / "01.jpg")
    assert max(picture.size) <= 256 and picture.size[0] / picture.size[1] == pytest.approx(
        Image.open(examples[0].image).size[0] / Image.open(examples[0].image).size[1], rel=0.02)


def _image_positions(base, image):
    """How many positions the vision tower itself gives an image."""
    from lorakit_blip import load_pixel_values

    with torch.inference_mode():
        return base.model.vision_model(pixel_values=load_pixel_values(base.processor, [image]))[0].shape[1]


@pytest.mark.parametrize("prompt", ["", "a small"])
def test_each_caption_says_its_tokens_and_whether_the_length_cap_cut_it(demo_base, prompt):
    # The demo base rambles on a catalog image (to the cap) and ends its
    # captions of retain images: one batch holds both kinds of row.
    images = [str(CATALOG / "catalog_0000.png"), *sorted(str(p) for p in (SAMPLES / "retain").glob("*.png"))[:3]]
    task = CaptionTask(CaptionOptions(prompt=prompt, max_new_tokens=20))
    records = task.predict(demo_base, demo_base.model, images)
    assert [r["finish_reason"] for r in records] == ["length", "stop", "stop", "stop"], records
    tokenizer = demo_base.processor.tokenizer
    read = _image_positions(demo_base, images[0]) + len(tokenizer(prompt)["input_ids"]) - 1  # bos, prompt; no [SEP]
    for record in records:
        said = len(tokenizer(record["caption"], add_special_tokens=False)["input_ids"])
        # A caption the model ended counts its end token too; a cut one is the cap's length.
        written = said + 1 if record["finish_reason"] == "stop" else 20
        assert record["usage"] == {"prompt_tokens": read, "completion_tokens": written,
                                   "total_tokens": read + written}, record
    # A batch neighbour changes no record: each image alone says the same.
    assert [task.predict(demo_base, demo_base.model, [image])[0] for image in images] == records


def test_predict_expands_folders_and_refuses_missing_files(demo_base, jsonl_folder):
    from lorakit.errors import DataError

    predictions = CaptionTask().predict(demo_base, demo_base.model, [jsonl_folder])
    assert [Path(p["image"]).name for p in predictions] == ["blue.png", "green.png", "red.png"]
    with pytest.raises(DataError, match="nothing.png"):
        CaptionTask().predict(demo_base, demo_base.model, [jsonl_folder / "nothing.png"])


def test_load_data_returns_examples_and_their_summary(jsonl_folder):
    with open(jsonl_folder / "metadata.jsonl", "a") as f:
        f.write('{"file_name": "red.png", "text": "a Red block"}\n')
    data = CaptionTask().load_data(jsonl_folder)
    assert len(data.examples) == 4 and all(isinstance(e, CaptionExample) for e in data.examples)
    assert data.summary == {"examples": 4, "images": 3, "vocabulary": 6, "mean_caption_words": 3.0}


def test_retain_examples_carry_no_trigger(demo_base):
    task = CaptionTask(CaptionOptions(trigger="sks"))
    retain = task.load_data(SAMPLES / "retain", role="retain").examples
    assert not any(e.triggered for e in retain)
    batch = task.collate(demo_base, retain[:1])
    plain = CaptionTask().collate(demo_base, retain[:1])
    assert torch.equal(batch["input_ids"], plain["input_ids"]) and torch.equal(batch["labels"], plain["labels"])


def test_training_sees_the_pixels_batch_captioning_sees(demo_base, tmp_path):
    """One image loader: alpha composited on white and 16-bit scaled, in
    collate (training, evaluation) as in `lorakit caption`'s workers."""
    import numpy as np
    from PIL import Image

    from lorakit_caption.loading import ImageFiles

    alpha = np.zeros((16, 16, 4), dtype=np.uint8)
    alpha[..., 0], alpha[:8, :, 3] = 200, 255  # red on top, transparent below
    Image.fromarray(alpha, "RGBA").save(tmp_path / "alpha.png")
    deep = (np.arange(256, dtype=np.uint16).reshape(16, 16) * 64).astype(np.uint16)  # 16-bit, peak 16320
    Image.fromarray(deep).save(tmp_path / "deep.png")
    paths = [str(tmp_path / "alpha.png"), str(tmp_path / "deep.png")]
    pixels = CaptionTask().collate(demo_base, [CaptionExample(p, "x") for p in paths])["pixel_values"]
    files = ImageFiles(paths, demo_base.processor.image_processor)
    assert torch.equal(pixels, torch.stack([files[i][1] for i in range(2)]))
    white = CaptionTask().collate(demo_base, [CaptionExample(str(write_png(tmp_path / "w.png", (255, 255, 255))), "x")])
    bottom = pixels[0, :, -8:, :]  # the transparent half reads as white, not black
    assert torch.allclose(bottom, white["pixel_values"][0, :, -8:, :], atol=0.05)
    # 16-bit values are scaled to 8 bits at full range (65535 -> 255), not clipped to white: the ramp reads
    # as the same ramp saved in 8 bits.
    Image.fromarray(np.round(deep / 257).astype(np.uint8)).save(tmp_path / "deep8.png")
    eight = CaptionTask().collate(demo_base, [CaptionExample(str(tmp_path / "deep8.png"), "x")])["pixel_values"]
    assert torch.allclose(pixels[1], eight[0], atol=0.02)


def test_nothing_to_predict_says_what_to_give():
    from click.testing import CliRunner

    from lorakit.cli import cli

    result = CliRunner().invoke(cli, ["predict", "caption"])
    assert result.exit_code != 0 and "give image files" in result.output


def test_a_missing_image_to_caption_is_said_before_the_base_loads(tmp_path, monkeypatch):
    """`lorakit predict caption` checks that its images exist before the
    minute a real base takes to load; a folder counts as its images."""
    from click.testing import CliRunner

    import lorakit.runs
    from lorakit.cli import cli

    def no_base(*args, **kwargs):
        raise AssertionError("the base loaded before the inputs were checked")

    monkeypatch.setattr(lorakit.runs, "load_base", no_base)
    photos = tmp_path / "photos"
    write_png(photos / "a.png", (1, 2, 3))
    write_png(photos / "b.png", (4, 5, 6))
    result = CliRunner().invoke(cli, ["predict", "caption", str(photos), str(tmp_path / "typo.png")])
    assert result.exit_code != 0
    assert f"{tmp_path / 'typo.png'}: no such image file or folder" in result.output, result.output
    result = CliRunner().invoke(cli, ["predict", "caption", "--text", "a red box"])  # a caption, not an image
    assert "a red box: no such image file or folder; caption reads images (files or folders of them), not text" \
        in result.output, result.output
    task = CaptionTask(CaptionOptions())
    assert task.prediction_inputs([str(photos)], {}) == [str(photos / "a.png"), str(photos / "b.png")]
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "scan.pdf").write_bytes(b"%PDF-1.4")
    with pytest.raises(DataError, match="notes: a folder with no images in it; lorakit reads .png"):
        task.prediction_inputs([str(photos), str(tmp_path / "notes")], {})
