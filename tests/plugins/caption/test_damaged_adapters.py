"""A damaged adapter folder is refused by the broken file's name, by every command that opens one."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from lorakit import runs

REPO = Path(__file__).resolve().parents[3]
IMAGE = str(REPO / "samples/caption/catalog/catalog_0000.png")


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    out = tmp_path_factory.mktemp("adapter") / "run"
    config = runs.load_config("caption", ["--data", str(REPO / "samples/caption/catalog"), "--base", "demo",
                                          "--output", str(out), "--train.max_steps", "2", "--data.max_examples", "20"])
    return runs.run(config, evaluate=False, show_progress=False).run_dir


def _truncate(adapter: Path) -> str:
    weights = adapter / "adapter_model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-100])
    return "adapter_model.safetensors is not a complete safetensors file"


def _bad_json(adapter: Path) -> str:
    (adapter / "adapter_config.json").write_text('{"peft_type": "LORA", "r": ')
    return "adapter_config.json is not valid JSON"


def _missing(adapter: Path) -> str:
    (adapter / "adapter_model.safetensors").unlink()
    return "adapter_model.safetensors is missing"


def _other_shapes(adapter: Path) -> str:
    from safetensors.torch import load_file, save_file

    weights = adapter / "adapter_model.safetensors"
    tensors = load_file(str(weights))
    name = sorted(k for k in tensors if "lora_A" in k)[0]
    tensors[name] = tensors[name][:, :-1].contiguous()  # as if made for a narrower model
    save_file(tensors, str(weights), metadata={"format": "pt"})
    return "does not fit this base"


def _lorakit(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "lorakit", *args], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})


@pytest.mark.parametrize("damage", [_truncate, _bad_json, _missing, _other_shapes])
def test_predict_names_the_broken_file(trained, tmp_path, damage):
    run = tmp_path / "run"
    shutil.copytree(trained, run)
    expected = damage(run / "adapter")
    result = _lorakit("predict", "caption", "--adapter", str(run), IMAGE)
    assert result.returncode != 0 and "Traceback" not in result.stderr, result.stderr[-2000:]
    assert expected in result.stderr, result.stderr[-2000:]


@pytest.mark.parametrize("command", ["evaluate", "export", "caption"])
def test_every_command_that_opens_an_adapter_refuses_a_truncated_one(trained, tmp_path, command):
    run = tmp_path / "run"
    shutil.copytree(trained, run)
    expected = _truncate(run / "adapter")
    args = {"evaluate": ["evaluate", str(run)],
            "export": ["export", str(run), "--merged", str(tmp_path / "merged")],
            "caption": ["caption", str(REPO / "samples/caption/catalog"), "--adapter", str(run),
                        "--out", str(tmp_path / "c.jsonl")]}[command]
    result = _lorakit(*args)
    assert result.returncode != 0 and "Traceback" not in result.stderr, result.stderr[-2000:]
    assert expected in result.stderr
    assert not (tmp_path / "merged").exists() and not (tmp_path / "c.jsonl").exists()
