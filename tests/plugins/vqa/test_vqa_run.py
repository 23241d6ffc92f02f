"""The vqa demo through lorakit's own loop: it learns the sample domain,
replay keeps the old one, and the artifact works with stock peft/transformers."""

import json

from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

import lorakit_vqa
from lorakit import runs
from lorakit.cli import cli
from lorakit_vqa.data import read_vqa_folder
from lorakit_vqa.loading import DEMO_BASE
from lorakit_blip.head import HEAD
from lorakit_vqa.task import VqaTask

SAMPLES = Path(lorakit_vqa.__file__).parent / "samples"


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("vqa") / "run"
    # The recipe by name, as the plugin registers it; its data paths are the samples'.
    config = runs.load_config("vqa-demo", ["--output", str(out)])
    assert Path(config.data.path).resolve() == (SAMPLES / "inspection").resolve()
    return runs.run(config, show_progress=False)


def _records(n=8):
    examples = read_vqa_folder(SAMPLES / "inspection")[:n]
    return [{"image": e.image, "question": e.question} for e in examples]


def _one_at_a_time(task, base, model, records):
    """Answers from a stock (unfused) model, one unpadded question per batch:
    its attention ignores question padding, so batching would change them."""
    return [answer for record in records for answer in task.predict(base, model, [record])]


@pytest.mark.slow
def test_adapter_learns_the_domain_and_replay_keeps_the_old_one(demo_run):
    test, retain = demo_run.report["test"], demo_run.report["retain"]
    assert test["base"]["vqa_accuracy"] < 0.25
    assert test["adapter"]["vqa_accuracy"] > test["base"]["vqa_accuracy"] + 0.3
    assert retain["adapter"]["vqa_accuracy"] >= retain["base"]["vqa_accuracy"] - 0.15


@pytest.mark.slow
def test_adapter_trains_and_saves_the_head(demo_run):
    manifest = json.loads((demo_run.adapter_dir / "lorakit.json").read_text())
    assert manifest["modules_to_save"] == [HEAD]


@pytest.mark.slow
def test_stock_peft_reload_gives_the_same_answers(demo_run):
    from peft import PeftModel
    from transformers import BlipForQuestionAnswering

    task, base, model, _, _ = runs.open_adapter(demo_run.run_dir)
    plain = PeftModel.from_pretrained(BlipForQuestionAnswering.from_pretrained(DEMO_BASE), str(demo_run.adapter_dir))
    plain.eval()
    # lorakit's fused attention computes stock BLIP's function, rounding apart
    # (and masks question padding, which the stock layer reads).
    assert torch.allclose(task.probe(base, model), task.probe(base, plain), atol=1e-5)
    assert task.predict(base, model, _records()) == _one_at_a_time(task, base, plain, _records())


@pytest.mark.slow
def test_merged_export_loads_in_transformers_and_answers_the_same(demo_run, tmp_path):
    from transformers import BlipForQuestionAnswering

    out = tmp_path / "merged"
    runs.export_merged(demo_run.run_dir, out)
    merged = BlipForQuestionAnswering.from_pretrained(out)
    merged.eval()
    assert not any("lora" in name for name, _ in merged.named_parameters())
    task, base, model, _, _ = runs.open_adapter(demo_run.run_dir)
    assert torch.allclose(task.probe(base, merged), task.probe(base, model), atol=1e-4)
    assert _one_at_a_time(task, base, merged, _records()) == task.predict(base, model, _records())


@pytest.mark.slow
def test_cli_predict_answers_image_and_question_flags(demo_run, tmp_path):
    record = _records(1)[0]
    result = CliRunner().invoke(cli, ["predict", "vqa", "--adapter", str(demo_run.run_dir),
                                      "--image", record["image"], "--question", record["question"]])
    assert result.exit_code == 0, result.output
    [answer] = [json.loads(line) for line in result.stdout.splitlines()]
    assert answer["image"] == record["image"] and answer["question"] == record["question"] and answer["answer"]
    qs = tmp_path / "qs.jsonl"
    qs.write_text("".join(json.dumps({"image": r["image"], "question": r["question"]}) + "\n" for r in _records(3)))
    out = tmp_path / "answers.jsonl"
    result = CliRunner().invoke(cli, ["predict", "vqa", "--adapter", str(demo_run.run_dir), "--questions", str(qs),
                                      "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert len(out.read_text().splitlines()) == 3


@pytest.mark.slow
def test_task_meets_the_contract(small_folder, tmp_path):
    from lorakit.testing import check_task

    images = [e.image for e in read_vqa_folder(small_folder)[:2]]
    report = check_task(VqaTask, data=small_folder, workdir=tmp_path,
                        predict_args=["--image", images[0], "--image", images[1], "--question", "is it damaged?"])
    assert report.merge_difference < 1e-4
    assert {"command-line-inputs", "writes-samples", "predict-cli", "merged-export"} <= set(report.checks)
    assert [r["image"] for r in report.predictions] == images and all(r["answer"] for r in report.predictions)
