"""The example plugin's own tests, written as a plugin author would: with
``lorakit.api`` and ``lorakit.testing`` only, the ``lorakit`` command for
whole runs, the conformance kit, a learning test, and bad data."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from lorakit.api import DataError
from lorakit.testing import check_task
from lorakit_textclass.task import TextClassTask

torch.set_num_threads(min(2, int(os.environ.get("OMP_NUM_THREADS") or 2)))
PACKAGE = Path(__file__).resolve().parents[1] / "lorakit_textclass"
SAMPLES = PACKAGE / "samples"


def lorakit(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    """The ``lorakit`` command, as a user runs it."""
    return subprocess.run([sys.executable, "-m", "lorakit", *args], capture_output=True, text=True, cwd=cwd,
                          timeout=600)


def test_passes_the_lorakit_conformance_kit(tmp_path):
    report = check_task(TextClassTask, data=SAMPLES / "movies", workdir=tmp_path,
                        predict_args=["--text", "what a gripping film", "--text", "the plot was dull"])
    assert report.merge_difference < 1e-4
    card = (tmp_path / "merged" / "README.md").read_text()  # the merged export's model card
    assert "library_name: transformers" in card and "DistilBertForSequenceClassification.from_pretrained" in card
    assert "command-line-inputs" in report.checks
    assert [r["text"] for r in report.predictions] == ["what a gripping film", "the plot was dull"]


@pytest.mark.slow  # a full demo training (about 30 s on 2 cores)
def test_demo_recipe_learns_movie_reviews_and_keeps_products(tmp_path):
    """`lorakit run textclass-demo` from a folder other than the repo: the
    recipe's data paths are relative to the recipe, inside the package."""
    run = tmp_path / "run"
    result = lorakit("run", "textclass-demo", "--output", str(run), "--quiet", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads((run / "report.json").read_text())
    assert report["test"]["base"]["accuracy"] < 0.7
    assert report["test"]["adapter"]["accuracy"] >= 0.9
    assert report["retain"]["adapter"]["accuracy"] >= report["retain"]["base"]["accuracy"] - 0.05
    manifest = json.loads((run / "adapter" / "lorakit.json").read_text())
    assert manifest["data"]["labels"] == {"negative": 121, "positive": 119}  # the summary of load_data
    config = (run / "config.yaml").read_text()
    assert "lr: 0.003" in config and "epochs: 20" in config  # from textclass.yaml, the task's own recipe

    result = lorakit("predict", "textclass", "--adapter", str(run), "--text", "what a gripping film",
                     "--text", "the plot was dull", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert [json.loads(line)["label"] for line in result.stdout.splitlines()] == ["positive", "negative"]


def test_the_task_is_found_through_its_entry_point():
    out = lorakit("plugins").stdout
    line = next(line for line in out.splitlines() if line.startswith("textclass"))
    assert "tasks: textclass" in line and "register_recipes" in line
    recipes = {line.split()[0] for line in lorakit("recipes").stdout.splitlines()}
    assert {"textclass", "textclass-demo"} <= recipes


def test_predict_without_inputs_says_what_to_give():
    result = lorakit("predict", "textclass")
    assert result.returncode != 0 and "--text" in result.stderr and "texts to classify" in result.stderr


@pytest.fixture(scope="module")
def demo():
    task = TextClassTask()
    return task, task.load_base("demo")


def test_examples_carry_labels_and_the_summary_counts_them(demo):
    task, base = demo
    data = task.load_data(SAMPLES / "movies", base)
    assert len(data.examples) == 240 and all(e.label in ("positive", "negative") for e in data.examples)
    assert data.summary == {"examples": 240, "labels": {"negative": 121, "positive": 119}}


@pytest.mark.parametrize("content, message", [
    ('{"text": "fine", "label": "meh"}\n', "label 'meh' is not one the base knows"),
    ('{"text": "", "label": "positive"}\n', "empty text"),
    ('{"text": "x", "label": "positive"\n', "data.jsonl:1: not valid JSON"),
])
def test_bad_data_is_named(tmp_path, demo, content, message):
    task, base = demo
    (tmp_path / "data.jsonl").write_text(content)
    with pytest.raises(DataError, match=message):
        task.load_data(tmp_path, base)


def test_csv_with_imdb_columns(tmp_path, demo):
    task, base = demo
    (tmp_path / "data.csv").write_text("review,sentiment\nwhat a gripping film,positive\nthe plot was dull,negative\n")
    examples = task.load_data(tmp_path, base).examples
    assert [(e.text, e.label) for e in examples] == [("what a gripping film", "positive"), ("the plot was dull", "negative")]


@pytest.mark.parametrize("name, text, line", [
    ("data.csv", "text,label\ngreat film,positive\nthe café scene was dull,negative\n", 3),
    pytest.param("data.jsonl",
                 '{"text": "great film", "label": "positive"}\n{"text": "a dull café", "label": "negative"}\n', 2,
                 marks=pytest.mark.slow),
])
def test_data_that_is_not_utf_8_is_one_message_from_the_command(tmp_path, name, text, line):
    """Latin-1 bytes (an old editor's) in the data: the file and line, no traceback, no run folder."""
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / name).write_bytes(text.encode("latin-1"))
    result = lorakit("train", "textclass", "--data", str(tmp_path / "data"), "--base", "demo",
                     "--output", str(tmp_path / "run"))
    errors = [row for row in result.stderr.splitlines() if row.startswith("error:")]
    assert result.returncode != 0 and "Traceback" not in result.stderr and len(errors) == 1, result.stderr
    assert f"{tmp_path / 'data' / name}:{line}: not UTF-8" in errors[0] and "save it as UTF-8" in errors[0]
    assert not (tmp_path / "run").exists()

class Payload:
    """Unpickling this runs a shell command that creates ``marker``."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_a_base_whose_bin_weights_hold_code_is_refused_and_not_run(tmp_path):
    shutil.copytree(PACKAGE / "demo_base", tmp_path / "base")
    (tmp_path / "base" / "model.safetensors").unlink()
    torch.save({"classifier.bias": Payload(tmp_path / "code-ran")}, tmp_path / "base" / "pytorch_model.bin")
    result = lorakit("train", "textclass", "--data", str(SAMPLES / "movies"), "--base", str(tmp_path / "base"),
                     "--output", str(tmp_path / "run"))
    errors = [row for row in result.stderr.splitlines() if row.startswith("error:")]
    assert result.returncode != 0 and "Traceback" not in result.stderr and len(errors) == 1, result.stderr
    assert f"{tmp_path / 'base' / 'pytorch_model.bin'} holds code or Python objects" in errors[0]
    assert not (tmp_path / "code-ran").exists() and not (tmp_path / "run").exists()

@pytest.mark.slow
def test_make_demo_quick_builds_a_loadable_base(tmp_path):
    subprocess.run([sys.executable, "-m", "lorakit_textclass.make_demo", "--out", str(tmp_path / "base"), "--quick"],
                   check=True, capture_output=True)
    base = TextClassTask().load_base(str(tmp_path / "base"))
    assert base.model.config.id2label == {0: "negative", 1: "positive"}


def test_the_base_judges_products(demo):
    task, base = demo
    base.model.eval()
    results = task.predict(base, base.model, ["the kettle is sturdy", "the kettle is flimsy"])
    assert [r["label"] for r in results] == ["positive", "negative"]
    assert json.dumps(results)


def test_synthetic_samples_are_reproducible(tmp_path):
    subprocess.run([sys.executable, "-m", "lorakit_textclass.synthetic", "--out", str(tmp_path)], check=True,
                   capture_output=True)
    for domain in ("movies", "products"):
        assert (tmp_path / domain / "data.jsonl").read_text() == (SAMPLES / domain / "data.jsonl").read_text()
