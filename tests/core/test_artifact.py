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
    assert card.startswith("---\nlibrary_name: peft\n")  # no base_model: "demo" is not on the Hub
    assert "`demo`" in card and "match_conv_geometry" not in card  # no dilated convolution here


@pytest.mark.parametrize("base, on_the_hub", [
    ("Salesforce/blip-image-captioning-base", True), ("facebook/musicgen-small", True), ("demo", False),
    ("piper:en_US-joe-medium", False), ("tts_models/en/vctk/vits", False), ("LOCAL", False),
])
def test_a_card_names_a_base_model_only_when_it_is_a_hub_id(tmp_path, monkeypatch, base, on_the_hub):
    from huggingface_hub import ModelCard

    from lorakit.artifact import Manifest
    from lorakit.model_card import model_card

    (tmp_path / "models" / "blip").mkdir(parents=True)
    monkeypatch.chdir(tmp_path)
    base = "models/blip" if base == "LOCAL" else base  # a local folder shaped like a Hub id
    manifest = Manifest(task="caption", base=base, base_fingerprint="sha256:0", targets="q", r=4, alpha=8)
    (tmp_path / "README.md").write_text(model_card(manifest))
    card = ModelCard.load(tmp_path / "README.md")
    assert card.data.base_model == (base if on_the_hub else None) and card.data.library_name == "peft"
    assert f"`{base}`" in card.text


def test_the_card_of_a_transformers_base_shows_the_peft_lines_that_load_it(tmp_path):
    from peft import LoraConfig, PeftModel, get_peft_model
    from transformers import BertConfig, BertModel

    from lorakit.artifact import Manifest
    from lorakit.model_card import model_card, transformers_class

    config = BertConfig(vocab_size=50, hidden_size=8, num_hidden_layers=1, num_attention_heads=2, intermediate_size=8)
    base = BertModel(config)
    base.save_pretrained(tmp_path / "base")
    model = get_peft_model(base, LoraConfig(r=2, target_modules=["query"]))
    model.save_pretrained(tmp_path / "adapter")
    assert transformers_class(model) == "BertModel" and transformers_class(ToyModel(0)) is None
    manifest = Manifest(task="caption", base="someone/bert", base_fingerprint="sha256:0", targets="query", r=2, alpha=4)
    card = model_card(manifest, base_class=transformers_class(model))
    code = card[card.index("```python") + len("```python"):card.index("```", card.index("```python") + 3)]
    assert 'BertModel.from_pretrained("someone/bert")' in code
    # The lines run as written, with the Hub id and the folder put in.
    code = code.replace("someone/bert", str(tmp_path / "base")).replace("THIS_FOLDER", str(tmp_path / "adapter"))
    names: dict = {}
    exec(code, names)  # noqa: S102 - the card's own snippet, nothing else
    assert isinstance(names["model"], PeftModel)
    local = model_card(Manifest(task="caption", base="demo", base_fingerprint="sha256:0", targets="q", r=2, alpha=4),
                       base_class="BertModel")
    assert 'from_pretrained("BASE_FOLDER")' in local and "the base `demo` as a `save_pretrained` folder" in local


def test_saving_an_adapter_of_a_hub_base_does_not_ask_the_hub(tmp_path, monkeypatch):
    """peft's default asked the Hub whether the base's config exists at every
    save, to decide about embedding matrices lorakit never changes: a request
    per checkpoint online, a warning offline."""
    import peft.utils.save_and_load as peft_saving
    from peft import LoraConfig, get_peft_model
    from safetensors import safe_open
    from transformers import BertConfig, BertModel

    from lorakit.artifact import Manifest, save_adapter

    def asked(*args, **kwargs):
        raise AssertionError(f"the Hub was asked: {args}")

    monkeypatch.setattr(peft_saving, "check_file_exists_on_hf_hub", asked)
    base = BertModel(BertConfig(vocab_size=50, hidden_size=8, num_hidden_layers=1, num_attention_heads=2,
                                intermediate_size=8))
    base.name_or_path = "someone/bert"  # as from_pretrained of a hub id leaves it
    model = get_peft_model(base, LoraConfig(r=2, target_modules=["query"]))
    manifest = Manifest(task="caption", base="someone/bert", base_fingerprint="sha256:0", targets="query", r=2, alpha=4)
    saved = save_adapter(model, tmp_path / "adapter", manifest)
    with safe_open(str(saved / "adapter_model.safetensors"), "pt") as weights:
        assert weights.keys() and all("lora_" in key for key in weights.keys())


def test_the_peft_note_on_dilated_convolutions_is_where_lora_sits_on_one():
    from peft import LoraConfig, get_peft_model
    from torch import nn

    from lorakit.lora import has_dilated_lora

    def model(dilation):
        return get_peft_model(nn.Sequential(nn.Conv1d(4, 4, 3, dilation=dilation), nn.Linear(4, 4)),
                              LoraConfig(r=2, target_modules=["0", "1"]))
    assert has_dilated_lora(model(3)) and not has_dilated_lora(model(1))


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


def test_a_file_given_as_adapter_is_told_apart_from_its_folder(tmp_path):
    from lorakit.artifact import resolve_adapter_dir

    adapter = tmp_path / "run" / "adapter"
    adapter.mkdir(parents=True)
    (adapter / "adapter_config.json").write_text("{}")
    (adapter / "adapter_model.safetensors").write_bytes(b"")
    (tmp_path / "photo.png").write_bytes(b"")
    assert resolve_adapter_dir(tmp_path / "run") == adapter == resolve_adapter_dir(adapter)
    with pytest.raises(AdapterError, match=r"adapter_model.safetensors is one file of an adapter; pass its folder, "
                                           f"{adapter}"):
        resolve_adapter_dir(adapter / "adapter_model.safetensors")
    with pytest.raises(AdapterError, match="photo.png is a file, not an adapter; pass a run folder"):
        resolve_adapter_dir(tmp_path / "photo.png")


def test_an_unfinished_run_given_as_adapter_is_told_to_resume(tmp_path):
    from lorakit.artifact import resolve_adapter_dir

    run = tmp_path / "run"
    (run / "checkpoints" / "last").mkdir(parents=True)
    (run / "config.yaml").write_text("task: toy\n")
    with pytest.raises(AdapterError, match=r"run is a run that has not finished: .*plus --resume \(--output .*run\)"):
        resolve_adapter_dir(run)
