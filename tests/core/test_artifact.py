"""The adapter artifact: a stock peft folder with manifest and card, checked
against its base, reloaded with the options it was trained with."""

import json

import pytest
import torch
from peft import PeftModel

from lorakit import runs
from lorakit.errors import AdapterError, OutputError

from toy_plugin import ToyModel


@pytest.fixture
def trained(toy_host, toy_data, tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "toy"
    config = runs.load_config("toy", ["--data", str(toy_data), "--output", str(out), "--epochs", "5", "--lr", "0.02"])
    return runs.run(config, show_progress=False)


def test_artifact_is_a_stock_peft_folder_with_manifest_and_card(trained):
    adapter = trained.adapter_dir
    assert {p.name for p in adapter.iterdir()} == {"adapter_config.json", "adapter_model.safetensors", "lorakit.json", "README.md"}
    manifest = json.loads((adapter / "lorakit.json").read_text())
    assert manifest["task"] == "toy" and manifest["base"] == "demo" and manifest["base_fingerprint"].startswith("sha256:")
    assert manifest["r"] == 8 and manifest["metrics"]["test"]["adapter"]["mse"] < manifest["metrics"]["test"]["base"]["mse"]
    card = (adapter / "README.md").read_text()
    assert card.startswith("---\nbase_model: \"demo\"\nlibrary_name: peft\n")


def test_stock_peft_reload_gives_the_same_outputs(trained):
    task, base, model, _, _ = runs.open_adapter(trained.run_dir)
    plain = PeftModel.from_pretrained(ToyModel(0), str(trained.adapter_dir))
    x = torch.randn(5, 4)
    with torch.no_grad():
        assert torch.equal(model(x), plain(x))
        assert not torch.equal(plain(x), ToyModel(0)(x))


def test_base_with_other_weights_is_refused_unless_forced(trained):
    with pytest.raises(AdapterError, match="fingerprint") as info:
        runs.open_adapter(trained.run_dir, base_name="demo-other")
    assert "--ignore-base-mismatch" in str(info.value)
    runs.open_adapter(trained.run_dir, base_name="demo-other", ignore_base_mismatch=True)


def test_output_folder_holding_a_run_is_refused(trained, toy_data):
    config = runs.load_config("toy", ["--data", str(toy_data), "--output", str(trained.run_dir)])
    with pytest.raises(OutputError, match="--resume"):
        runs.run(config, show_progress=False)


def test_predict_with_adapter_uses_the_adapted_model(trained):
    plain = runs.predict("toy", ["0.1,0.2,0.3,0.4"])
    adapted = runs.predict("toy", ["0.1,0.2,0.3,0.4"], adapter=str(trained.run_dir))
    assert plain[0]["y"] != pytest.approx(adapted[0]["y"])


def test_manifest_records_task_options_and_use_restores_them(toy_host, toy_data, tmp_path):
    config = runs.load_config("toy", ["--data", str(toy_data), "--output", str(tmp_path / "o"), "--epochs", "1",
                                      "--nan_at_call", "100000"])
    outcome = runs.run(config, show_progress=False, evaluate=False)
    assert json.loads((outcome.adapter_dir / "lorakit.json").read_text())["options"]["nan_at_call"] == 100000
    task, *_ = runs.open_adapter(outcome.run_dir)
    assert task.options.nan_at_call == 100000
    task, *_ = runs.open_adapter(outcome.run_dir, options={"nan_at_call": 5})
    assert task.options.nan_at_call == 5
