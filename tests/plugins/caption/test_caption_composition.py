"""Two caption adapters composed on the demo BLIP: the report's unmerged
variants equal the merged models (`lorakit predict --adapter A:w --adapter
B:w`), and its "alone" numbers equal `lorakit evaluate RUN`."""

import json
import shutil
from pathlib import Path

import pytest
import torch

import lorakit_caption
from lorakit import runs
from lorakit.apply import open_with_adapters, read_adapters
from lorakit.composition import compare, open_composition
from lorakit.config import RunConfig

SAMPLES = Path(lorakit_caption.__file__).parent / "samples"


def small_folder(source: Path, target: Path, count: int) -> Path:
    """The first ``count`` images of a sample folder with their captions."""
    target.mkdir(parents=True)
    lines = (source / "metadata.jsonl").read_text().splitlines()[:count]
    for line in lines:
        shutil.copy(source / json.loads(line)["file_name"], target)
    (target / "metadata.jsonl").write_text("\n".join(lines) + "\n")
    return target


@pytest.fixture(scope="module")
def two(tmp_path_factory):
    """Two 2-step adapters on the demo base, from catalog and scene images."""
    root = tmp_path_factory.mktemp("caption-composition")
    folders = []
    for name in ("catalog", "retain"):
        data = small_folder(SAMPLES / name, root / f"data-{name}", 20)
        config = runs.load_config("caption", ["--data", str(data), "--base", "demo", "--output", str(root / name),
                                              "--train.max_steps", "2", "--batch_size", "4", "--lr", "0.01"])
        folders.append(runs.run(config, show_progress=False, evaluate=False).run_dir)
    return folders


def test_caption_variants_equal_merged_models_and_alone_equals_evaluate(two):
    a, b = two
    specs = read_adapters([(a, 1.0), (b, 0.6)])
    composition = open_composition(specs)
    task = composition.tasks[0]

    def merged(chosen):
        chosen_task = runs.make_task(RunConfig(task="caption", options=chosen[0].manifest.options))
        adapted = open_with_adapters(chosen_task, chosen)
        return chosen_task.probe(adapted.base, adapted.model).float()

    with torch.inference_mode():
        with composition.variant(composition.weights()) as model:
            combined = task.probe(composition.base, model).float()
        with composition.variant({}) as model:
            base = task.probe(composition.base, model).float()
    assert (combined - base).abs().max() > 1e-3  # the adapters change the model
    assert torch.allclose(combined, merged(specs), atol=1e-4)

    held = [runs.held_out(task, composition.base, run_dir) for task, run_dir in zip(composition.tasks, two)]
    report = compare(composition, held)
    evaluated = runs.evaluate_run(a)["test"]
    first = report["adapters"][0]["splits"]["test"]
    assert first["alone"] == pytest.approx(evaluated["adapter"], abs=1e-6)
    assert first["base"] == pytest.approx(evaluated["base"], abs=1e-6)
    assert set(first["combined"]) == set(evaluated["adapter"])
