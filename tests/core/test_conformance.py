"""lorakit.testing: the kit plugin authors call; the toy and caption tasks pass it."""

import json
import shutil

from pathlib import Path

import pytest

from lorakit.task import Task
from lorakit.testing import check_contract, check_task

from toy_plugin import ToyTask

REPO = Path(__file__).resolve().parents[2]


def test_toy_task_passes_the_conformance_kit(toy_data, tmp_path):
    report = check_task(ToyTask, data=toy_data, workdir=tmp_path)
    assert report.checks == ["contract", "train-evaluate-export", "stock-peft-reload", "exact-resume", "merged-export"]
    assert report.merge_difference < 1e-4


@pytest.mark.slow
def test_caption_task_passes_the_conformance_kit(tmp_path):
    from lorakit_caption.task import CaptionTask

    catalog = REPO / "samples" / "caption" / "catalog"
    small = tmp_path / "data"
    small.mkdir()
    rows = (catalog / "metadata.jsonl").read_text().splitlines()[:20]
    (small / "metadata.jsonl").write_text("\n".join(rows) + "\n")
    for row in rows:
        name = json.loads(row)["file_name"]
        shutil.copy(catalog / name, small / name)
    report = check_task(CaptionTask, data=small, workdir=tmp_path / "work", steps=4)
    assert set(report.metrics["test"]["adapter"]) == {"cider", "bleu4"}


def test_contract_check_names_what_is_missing():
    class Half(Task):
        name = "half-done"
        description = "x"
        metrics = {"accuracy": "max"}

        def load_base(self, name):
            raise NotImplementedError

    with pytest.raises(AssertionError, match="load_data, collate, evaluate, predict, probe"):
        check_contract(Half)

    class BadDirection(ToyTask):
        metrics = {"mse": "lower"}

    with pytest.raises(AssertionError, match="'max' or 'min'"):
        check_contract(BadDirection)
