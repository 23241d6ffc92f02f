"""The example plugin's own tests, written as a plugin author would: the
lorakit conformance kit, a learning test, and bad data."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from lorakit import runs
from lorakit.errors import DataError
from lorakit.testing import check_task
from lorakit_textclass.task import TextClassTask

torch.set_num_threads(2)
HERE = Path(__file__).resolve().parents[1]
SAMPLES = HERE / "samples"


def test_passes_the_lorakit_conformance_kit(tmp_path):
    report = check_task(TextClassTask, data=SAMPLES / "movies", workdir=tmp_path, steps=4)
    assert report.merge_difference < 1e-4


def test_adapter_learns_movie_reviews_and_keeps_products(tmp_path):
    recipe = HERE / "lorakit_textclass" / "recipes" / "textclass-demo.yaml"
    config = runs.load_config(str(recipe), ["--data", str(SAMPLES / "movies"), "--retain", str(SAMPLES / "products"),
                                            "--output", str(tmp_path / "run")])
    report = runs.run(config, show_progress=False).report
    assert report["test"]["base"]["accuracy"] < 0.7
    assert report["test"]["adapter"]["accuracy"] >= 0.9
    assert report["retain"]["adapter"]["accuracy"] >= report["retain"]["base"]["accuracy"] - 0.05


def test_the_task_is_found_through_its_entry_point():
    out = subprocess.run([sys.executable, "-m", "lorakit", "plugins"], capture_output=True, text=True, check=True).stdout
    line = next(line for line in out.splitlines() if line.startswith("textclass"))
    assert "tasks: textclass" in line and "register_recipes" in line
    assert "textclass-demo" in subprocess.run([sys.executable, "-m", "lorakit", "recipes"], capture_output=True,
                                              text=True, check=True).stdout


@pytest.mark.parametrize("content, message", [
    ('{"text": "fine", "label": "meh"}\n', "label 'meh' is not one the base knows"),
    ('{"text": "", "label": "positive"}\n', "empty text"),
    ('{"text": "x", "label": "positive"\n', "data.jsonl:1: not valid JSON"),
])
def test_bad_data_is_named(tmp_path, content, message):
    (tmp_path / "data.jsonl").write_text(content)
    task = TextClassTask()
    with pytest.raises(DataError, match=message):
        task.load_data(tmp_path, task.load_base("demo"))


def test_csv_with_imdb_columns(tmp_path):
    (tmp_path / "data.csv").write_text("review,sentiment\nwhat a gripping film,positive\nthe plot was dull,negative\n")
    examples = TextClassTask().load_data(tmp_path)
    assert [(e.text, e.label) for e in examples] == [("what a gripping film", "positive"), ("the plot was dull", "negative")]


def test_make_demo_quick_builds_a_loadable_base(tmp_path):
    subprocess.run([sys.executable, "-m", "lorakit_textclass.make_demo", "--out", str(tmp_path / "base"), "--quick"],
                   check=True, capture_output=True)
    base = TextClassTask().load_base(str(tmp_path / "base"))
    assert base.model.config.id2label == {0: "negative", 1: "positive"}


def test_predict_labels_texts(tmp_path):
    results = runs.predict("textclass", ["the kettle is sturdy", "the kettle is flimsy"])
    assert [r["label"] for r in results] == ["positive", "negative"]
    assert json.dumps(results)
