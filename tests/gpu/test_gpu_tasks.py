"""The GPU suite (`pytest -m gpu`): every task trained, evaluated, used and
exported on CUDA in its default precision (bf16 autocast where native), and
a 4-bit base (QLoRA) on one. Skipped without a CUDA device."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from lorakit import runs

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")]

REPO = Path(__file__).resolve().parents[2]
SHORT = ["--train.max_steps", "6", "--train.eval_every", "3", "--train.batch_size", "4"]

#: demo recipe, and what follows `lorakit predict TASK --adapter RUN` (OUT = a path in the test folder).
TASKS = {
    "caption": ("caption-demo", ["samples/caption/catalog/catalog_0000.png", "samples/caption/catalog/catalog_0001.png"]),
    "vqa": ("vqa-demo", ["--image", "samples/vqa/inspection/item_0000.png", "--question", "what is the damage?"]),
    "voice-clone": ("voice-demo", ["--text", "Hello there.", "--out", "OUT/hello.wav"]),
    "music-style": ("music-demo", ["--prompt", "fast chiptune melody", "--seconds", "2", "--out", "OUT/clip.wav"]),
    "textclass": ("textclass-demo", ["--text", "what a wonderful film"]),
}


def _run(recipe: str, out: Path, *flags: str):
    from accelerate.state import AcceleratorState

    AcceleratorState._reset_state(True)
    torch.cuda.reset_peak_memory_stats()
    try:
        return runs.run(runs.load_config(recipe, ["--output", str(out), *SHORT, *flags]), show_progress=False)
    finally:
        AcceleratorState._reset_state(True)


def _lorakit(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "lorakit", *args], cwd=REPO, capture_output=True, text=True,
                          timeout=600, env={**os.environ, "OMP_NUM_THREADS": "4"})


@pytest.mark.parametrize("task", list(TASKS))
def test_every_task_trains_evaluates_predicts_and_exports_on_cuda(task, tmp_path):
    recipe, predict_args = TASKS[task]
    outcome = _run(recipe, tmp_path / "run")
    assert torch.cuda.max_memory_allocated() > 0, "the run did not use the GPU"
    later = runs.evaluate_run(outcome.run_dir)  # full precision, on the GPU, as the run's own report
    for split, scores in outcome.report.items():
        for side in ("base", "adapter"):
            timed = {"rtf"}  # a speed, not a result: differs from run to run
            measured = {k: v for k, v in scores[side].items() if k not in timed}
            assert {k: later[split][side][k] for k in measured} == pytest.approx(measured, rel=1e-3, abs=1e-3)
    args = [a.replace("OUT", str(tmp_path)) for a in predict_args]
    predicted = _lorakit("predict", task, "--adapter", str(outcome.run_dir), *args)
    assert predicted.returncode == 0, predicted.stderr[-2000:]
    merged = _lorakit("export", str(outcome.run_dir), "--merged", str(tmp_path / "merged"))
    assert merged.returncode == 0, merged.stderr[-2000:]
    assert (tmp_path / "merged").is_dir()


def test_qlora_trains_on_a_4bit_base_and_exports_full_precision(tmp_path):
    pytest.importorskip("bitsandbytes")
    outcome = _run("caption-demo", tmp_path / "run", "--base_dtype", "4bit")
    report = json.loads((outcome.run_dir / "report.json").read_text())
    assert report["test"]["adapter"]["cider"] > report["test"]["base"]["cider"]
    merged = _lorakit("export", str(outcome.run_dir), "--merged", str(tmp_path / "merged"))
    assert merged.returncode == 0, merged.stderr[-2000:]
    from safetensors.torch import load_file

    weights = load_file(str(tmp_path / "merged" / "model.safetensors"))
    assert {t.dtype for t in weights.values() if t.is_floating_point()} == {torch.float32}
