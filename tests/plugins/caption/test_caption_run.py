"""The caption demo through lorakit's own loop: it learns the sample domain,
replay keeps the old one, and the artifact works with stock peft/transformers."""

import json
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

import lorakit_caption
from lorakit import runs
from lorakit.cli import cli
from lorakit_caption.task import DEMO_BASE

SAMPLES = Path(lorakit_caption.__file__).parent / "samples"


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("caption") / "run"
    # The recipe by name, as the plugin registers it; its data paths are the samples'.
    config = runs.load_config("caption-demo", ["--output", str(out)])
    assert Path(config.data.path).resolve() == (SAMPLES / "catalog").resolve()
    return runs.run(config, show_progress=False)


@pytest.mark.slow
def test_adapter_learns_the_domain_and_replay_keeps_the_old_one(demo_run):
    test, retain = demo_run.report["test"], demo_run.report["retain"]
    assert test["base"]["cider"] < 0.5
    assert test["adapter"]["cider"] > 3.0
    assert test["adapter"]["bleu4"] > test["base"]["bleu4"] + 0.3
    assert retain["adapter"]["cider"] >= 0.8 * retain["base"]["cider"]


def _images(n=6):
    rows = [json.loads(line) for line in (SAMPLES / "catalog" / "metadata.jsonl").read_text().splitlines()[:n]]
    return [str(SAMPLES / "catalog" / r["file_name"]) for r in rows]


@pytest.mark.slow
def test_stock_peft_reload_gives_the_same_outputs(demo_run):
    from peft import PeftModel
    from transformers import BlipForConditionalGeneration

    task, base, model, _, _ = runs.open_adapter(demo_run.run_dir)
    # As the adapter's model card says to load it.
    card = (demo_run.adapter_dir / "README.md").read_text()
    assert 'BlipForConditionalGeneration.from_pretrained("BASE_FOLDER")' in card
    plain = PeftModel.from_pretrained(BlipForConditionalGeneration.from_pretrained(DEMO_BASE), str(demo_run.adapter_dir))
    plain.eval()
    # lorakit's fused attention computes stock BLIP's function, rounding apart.
    assert torch.allclose(task.probe(base, model), task.probe(base, plain), atol=1e-5)
    assert task.predict(base, model, _images()) == task.predict(base, plain, _images())


@pytest.mark.slow
def test_merged_export_loads_in_transformers_and_equals_unmerged(demo_run, tmp_path):
    from transformers import BlipForConditionalGeneration

    out = tmp_path / "merged"
    runs.export_merged(demo_run.run_dir, out)
    merged = BlipForConditionalGeneration.from_pretrained(out)
    merged.eval()
    assert not any("lora" in name for name, _ in merged.named_parameters())
    assert 'BlipForConditionalGeneration.from_pretrained("THIS_FOLDER")' in (out / "README.md").read_text()
    task, base, model, _, _ = runs.open_adapter(demo_run.run_dir)
    assert torch.allclose(task.probe(base, merged), task.probe(base, model), atol=1e-4)
    assert task.predict(base, merged, _images()) == task.predict(base, model, _images())


@pytest.mark.slow
def test_cli_predict_captions_images_with_the_adapter(demo_run):
    images = _images(3)
    result = CliRunner().invoke(cli, ["predict", "caption", "--adapter", str(demo_run.run_dir), *images])
    assert result.exit_code == 0, result.output
    records = [json.loads(line) for line in result.stdout.splitlines()]
    truth = {str(SAMPLES / "catalog" / r["file_name"]): r["text"] for r in map(json.loads, (SAMPLES / "catalog" / "metadata.jsonl").read_text().splitlines())}
    assert [r["image"] for r in records] == images
    # The adapter writes catalog captions: most of them exactly right.
    assert sum(r["caption"] == truth[r["image"]] for r in records) >= 2


@pytest.mark.slow
def test_task_meets_the_contract(tmp_path):
    from lorakit.testing import check_task
    from lorakit_caption.task import CaptionTask

    images = [str(p) for p in sorted((SAMPLES / "catalog").glob("*.png"))[:2]]
    report = check_task(CaptionTask, data=SAMPLES / "catalog", workdir=tmp_path, predict_args=images)
    assert report.merge_difference < 1e-4
    assert {"command-line-inputs", "writes-samples", "predict-cli", "merged-export"} <= set(report.checks)
    assert [r["image"] for r in report.predictions] == images and all(r["caption"] for r in report.predictions)
