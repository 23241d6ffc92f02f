"""The vqa task on the committed demo base: options, base loading, collate,
the head decision, inputs, probe and answers. Learning through lorakit's own
loop is tested in test_vqa_run.py."""

import json
import os
import subprocess
import sys

from pathlib import Path

import pytest
import torch

import lorakit_vqa
from lorakit.api import Data
from lorakit.errors import BaseModelError, ConfigError, DataError
from lorakit_vqa.data import VqaExample, read_vqa_folder
from lorakit_blip.head import HEAD
from lorakit_vqa.task import VqaOptions, VqaTask

REPO = Path(__file__).resolve().parents[3]
SAMPLES = Path(lorakit_vqa.__file__).parent / "samples"


def test_plugin_registers_the_task_and_the_import_command():
    import click

    import lorakit_vqa

    registered = []
    lorakit_vqa.register_tasks(register=registered.append)
    assert registered == [VqaTask] and VqaTask.name == "vqa"
    assert list(VqaTask.metrics) == ["vqa_accuracy", "exact_match"]
    group = click.Group("lorakit")
    lorakit_vqa.register_commands(cli=group)
    assert "vqa-import" in group.commands


def test_import_command_writes_the_folder(tmp_path):
    from click.testing import CliRunner
    from PIL import Image

    from lorakit_vqa.commands import vqa_import

    Image.new("RGB", (8, 8)).save(tmp_path / "COCO_val2014_000000000042.jpg")
    (tmp_path / "q.json").write_text(json.dumps({"questions": [{"image_id": 42, "question": "Red?", "question_id": 1}]}))
    (tmp_path / "a.json").write_text(json.dumps({"annotations": [{"question_id": 1, "image_id": 42,
                                                                  "answers": [{"answer": "yes"}]}]}))
    result = CliRunner().invoke(vqa_import, ["--questions", str(tmp_path / "q.json"), "--annotations",
                                             str(tmp_path / "a.json"), "--images", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "1 questions written" in result.output and (tmp_path / "questions.jsonl").is_file()


@pytest.mark.parametrize("field, value", [("max_answer_tokens", 0), ("num_beams", "many"), ("num_beams", True),
                                          ("train_head", "sometimes")])
def test_bad_options_name_the_field(field, value):
    with pytest.raises(ConfigError, match=field):
        VqaOptions(**{field: value})


def test_options_accept_numeric_text():
    assert VqaOptions(max_answer_tokens="5").max_answer_tokens == 5


def test_missing_base_folder_names_the_options(tmp_path):
    with pytest.raises(BaseModelError, match="demo"):
        VqaTask().load_base(str(tmp_path / "missing"))


def test_folder_without_config(tmp_path):
    with pytest.raises(BaseModelError, match="config.json"):
        VqaTask().load_base(str(tmp_path))


def test_captioning_blip_is_refused():
    caption_demo = REPO / "plugins" / "lorakit_caption" / "demo_base"
    with pytest.raises(BaseModelError, match="not a BLIP visual question answering model"):
        VqaTask().load_base(str(caption_demo))


def test_offline_hub_id_names_the_options():
    # A subprocess, because the hub's offline switch is read at import time.
    code = (
        "from lorakit_vqa.task import VqaTask\n"
        "from lorakit.errors import BaseModelError\n"
        "try:\n    VqaTask().load_base('lorakit-tests/no-such-blip-vqa')\n"
        "except BaseModelError as e:\n    print(e)\n"
    )
    env = dict(os.environ, HF_HUB_OFFLINE="1")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120).stdout
    assert "--base demo" in out and "config.json" in out and "Salesforce/blip-vqa-base" in out


def test_collate_puts_minus_100_in_labels_only(vqa_base, small_folder):
    examples = read_vqa_folder(small_folder)[:3] + [VqaExample(read_vqa_folder(small_folder)[0].image, "what?",
                                                               ("a much longer answer than the rest",))]
    batch = VqaTask().collate(vqa_base, examples)
    text = vqa_base.model.config.text_config
    decoder, mask, labels = batch["decoder_input_ids"], batch["decoder_attention_mask"], batch["labels"]
    assert (decoder >= 0).all() and (batch["input_ids"] >= 0).all()  # model inputs are never -100
    assert (decoder[:, 0] == text.bos_token_id).all()
    assert torch.equal(labels == -100, mask == 0)  # -100 exactly on padding
    assert torch.equal(labels[mask == 1], decoder[mask == 1])
    assert batch["pixel_values"].shape[0] == 4
    loss = VqaTask().loss(vqa_base, vqa_base.model, batch)
    assert torch.isfinite(loss)


def test_several_answers_train_on_the_majority(vqa_base, tmp_path):
    from lorakit_vqa.task import _training_answer

    assert _training_answer(("Donut", "ring", "ring")) == "ring"
    assert _training_answer(("yes",)) == "yes"


def test_head_is_trained_for_new_answer_words_only(vqa_base):
    inspection = VqaTask().load_data(SAMPLES / "inspection")
    retain = VqaTask().load_data(SAMPLES / "retain", role="retain")
    assert VqaTask().prepare_base(vqa_base, inspection) == [HEAD]
    assert VqaTask().prepare_base(vqa_base, retain) == []  # the base's own answers
    assert VqaTask(VqaOptions(train_head="never")).prepare_base(vqa_base, inspection) == []
    assert VqaTask(VqaOptions(train_head="always")).prepare_base(vqa_base, retain) == [HEAD]
    # An adapter opened for use names its own trained modules: nothing to decide.
    assert VqaTask(VqaOptions(train_head="always")).prepare_base(vqa_base, None) == []


def test_load_data_returns_examples_and_their_summary(tmp_path):
    from PIL import Image

    for name in ("a.png", "b.png"):
        Image.new("RGB", (16, 16), (200, 30, 30)).save(tmp_path / name)
    rows = [{"image": "a.png", "question": "what color is it?", "answer": "red"},
            {"image": "a.png", "question": "how many marks?", "answers": ["2", "two", "2"]},
            {"image": "b.png", "question": "what color is it?", "answer": "red"}]
    (tmp_path / "questions.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    data = VqaTask().load_data(tmp_path)
    assert isinstance(data, Data) and data.examples == read_vqa_folder(tmp_path)
    # Answers "red" and "2" (the majority of the three).
    assert data.summary == {"examples": 3, "images": 2, "several_answers": 1, "answer_vocabulary": 2}


def test_unsaid_tokens_are_the_damage_words(vqa_base):
    from lorakit_blip.head import unsaid_tokens

    unsaid = unsaid_tokens(vqa_base, ["crack", "star", "yes", "red"])
    assert {"c", "##r", "##a", "##k"} <= set(unsaid)
    assert not {"star", "red", "y", "##e", "##s"} & set(unsaid)


def test_samples_show_each_question_with_its_image_answer_and_references(vqa_base, small_folder, tmp_path):
    examples = read_vqa_folder(small_folder)[:3]
    VqaTask().write_samples(vqa_base, vqa_base.model, examples, tmp_path / "samples")
    assert sorted(p.name for p in (tmp_path / "samples").iterdir()) == ["01.jpg", "01.txt", "02.jpg", "02.txt",
                                                                         "03.jpg", "03.txt"]
    answer = VqaTask().predict(vqa_base, vqa_base.model, [{"image": examples[1].image,
                                                           "question": examples[1].question}])[0]["answer"]
    assert (tmp_path / "samples" / "02.txt").read_text().splitlines() == [
        f"Q: {examples[1].question}", f"A: {answer}", f"reference: {' | '.join(examples[1].answers)}"]


def test_command_line_inputs_become_records(tmp_path, monkeypatch):
    from PIL import Image

    monkeypatch.chdir(tmp_path)
    (tmp_path / "img").mkdir()
    for name in ("a.png", "b.png", "img/a.png"):
        Image.new("RGB", (8, 8)).save(tmp_path / name)
    task = VqaTask()
    one = task.prediction_inputs([], {"image": "a.png", "question": "is it damaged?"})
    assert one == [{"image": "a.png", "question": "is it damaged?"}]
    many = task.prediction_inputs(["a.png", "b.png"], {"question": "what item is this?"})
    assert [r["image"] for r in many] == ["a.png", "b.png"] and many[1]["question"] == "what item is this?"
    asked = task.prediction_inputs([], {"image": "a.png", "question": ["what item is this?", "is it damaged?"]})
    assert asked == [{"image": "a.png", "question": "what item is this?"}, {"image": "a.png", "question": "is it damaged?"}]
    (tmp_path / "qs.jsonl").write_text('{"image": "img/a.png", "question": "q?", "answer": "x"}\n\n')
    assert task.prediction_inputs([], {"questions": str(tmp_path / "qs.jsonl")}) == [
        {"image": str(tmp_path / "img" / "a.png"), "question": "q?"}]


@pytest.mark.parametrize("flags, message", [
    ({"image": "a.png"}, "needs a question"),
    ({"question": "q?"}, "needs an image"),
    ({"image": ["a.png", "b.png", "c.png"], "question": ["q?", "r?"]}, "3 images but 2 questions"),
])
def test_command_line_mistakes(flags, message):
    with pytest.raises(ConfigError, match=message):
        VqaTask().prediction_inputs([], flags)


def test_bad_questions_file_names_the_line(tmp_path):
    (tmp_path / "qs.jsonl").write_text('{"image": "a.png", "question": "q?"}\n{"image": "a.png"\n')
    with pytest.raises(DataError, match=r"qs.jsonl:2"):
        VqaTask().prediction_inputs([], {"questions": str(tmp_path / "qs.jsonl")})


def test_predict_refuses_bad_records(vqa_base, small_folder, tmp_path):
    image = read_vqa_folder(small_folder)[0].image
    with pytest.raises(DataError, match="does not exist"):
        VqaTask().predict(vqa_base, vqa_base.model, [{"image": str(tmp_path / "no.png"), "question": "q?"}])
    with pytest.raises(DataError, match="empty question"):
        VqaTask().predict(vqa_base, vqa_base.model, [{"image": image, "question": "  "}])
    with pytest.raises(DataError, match="records"):
        VqaTask().predict(vqa_base, vqa_base.model, [image])


def test_batched_answers_equal_one_at_a_time(vqa_base, small_folder):
    # Questions of different lengths in one batch: the decoder must not see padding.
    examples = read_vqa_folder(small_folder)[:6]
    records = [{"image": e.image, "question": q} for e, q in zip(examples, ["is it damaged?", "what item is this?"] * 3)]
    task = VqaTask()
    together = task.predict(vqa_base, vqa_base.model, records)
    alone = [task.predict(vqa_base, vqa_base.model, [r])[0] for r in records]
    assert together == alone  # the token counts too: a question is counted without its padding
    assert all(set(r) == {"image", "question", "answer", "usage", "finish_reason"} for r in together)


def test_base_answers_its_own_domain(vqa_base):
    retain = read_vqa_folder(SAMPLES / "retain")[:40]
    scores = VqaTask().evaluate(vqa_base, vqa_base.model, retain)
    assert set(scores) == {"vqa_accuracy", "exact_match"} and scores["vqa_accuracy"] > 0.6


def test_probe_is_deterministic(vqa_base):
    task = VqaTask()
    first, second = task.probe(vqa_base, vqa_base.model), task.probe(vqa_base, vqa_base.model)
    assert torch.equal(first, second) and first.shape[-1] == vqa_base.model.config.text_config.vocab_size


def test_nothing_to_predict_says_what_to_give():
    from click.testing import CliRunner

    from lorakit.cli import cli

    result = CliRunner().invoke(cli, ["predict", "vqa"])
    assert result.exit_code != 0 and "--image FILE --question TEXT, or --questions FILE" in result.output


def test_training_and_answering_see_the_same_pixels(vqa_base, tmp_path):
    """One image loader: an RGBA image is composited on white in collate
    (training) as when answering, and as `lorakit caption` opens it."""
    import numpy as np
    from PIL import Image

    from lorakit.api import open_rgb
    from lorakit_blip import pixel_values

    rgba = np.zeros((16, 16, 4), dtype=np.uint8)
    rgba[..., 2], rgba[:, :8, 3] = 180, 255  # blue on the left, transparent on the right
    Image.fromarray(rgba, "RGBA").save(tmp_path / "a.png")
    example = VqaExample(str(tmp_path / "a.png"), "what color?", ("blue",))
    batch = VqaTask().collate(vqa_base, [example])
    expected = pixel_values(vqa_base.processor, [open_rgb(example.image).image])
    assert torch.equal(batch["pixel_values"], expected)
    assert open_rgb(example.image).image.getpixel((15, 0)) == (255, 255, 255)


@pytest.mark.parametrize("cap, finish", [(12, "stop"), (1, "length")])
def test_each_answer_says_its_tokens_and_whether_the_length_cap_cut_it(vqa_base, cap, finish):
    from lorakit_blip import load_pixel_values

    images = sorted(str(p) for p in (SAMPLES / "inspection").glob("*.png"))[:3]
    questions = ["what color is it?", "is it damaged?", "what shape is the item in the picture?"]
    records = VqaTask(VqaOptions(max_answer_tokens=cap)).predict(
        vqa_base, vqa_base.model, [{"image": i, "question": q} for i, q in zip(images, questions)])
    tokenizer = vqa_base.processor.tokenizer
    with torch.inference_mode():
        positions = vqa_base.model.vision_model(pixel_values=load_pixel_values(vqa_base.processor, images[:1]))[0].shape[1]
    for record, question in zip(records, questions):
        # The image, the question as encoded ([CLS] ... [SEP], no padding) and the decoder's bos.
        read = positions + len(tokenizer(question)["input_ids"]) + 1
        said = len(tokenizer(record["answer"], add_special_tokens=False)["input_ids"])
        written = said + 1 if finish == "stop" else cap  # an ended answer counts its end token
        assert record["finish_reason"] == finish and said >= 1, record
        assert record["usage"] == {"prompt_tokens": read, "completion_tokens": written, "total_tokens": read + written}


def test_a_missing_image_to_ask_about_is_said_before_the_base_loads(tmp_path, monkeypatch):
    """`lorakit predict vqa` checks that its images exist before the minute a
    real base takes to load (decoding each waits for predict)."""
    from click.testing import CliRunner

    import lorakit.runs
    from lorakit.cli import cli

    def no_base(*args, **kwargs):
        raise AssertionError("the base loaded before the inputs were checked")

    monkeypatch.setattr(lorakit.runs, "load_base", no_base)
    result = CliRunner().invoke(cli, ["predict", "vqa", "--image", str(tmp_path / "typo.png"), "--question", "what?"])
    assert result.exit_code != 0
    assert f"image {tmp_path / 'typo.png'} does not exist" in result.output, result.output
