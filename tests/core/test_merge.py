"""Merging: one adapter into its base (also through weight norm), several at
weights, and the merged export that refuses to change the outputs."""

import pytest
import torch
from safetensors.torch import load_file

from lorakit import runs
from lorakit.errors import OutputError

from toy_plugin import ToyModel


@pytest.fixture
def trained(toy_host, toy_data, tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "toy"
    config = runs.load_config("toy", ["--data", str(toy_data), "--output", str(out), "--epochs", "3", "--lr", "0.02"])
    return runs.run(config, show_progress=False, evaluate=False)


def test_merged_export_equals_unmerged(trained, tmp_path):
    out = tmp_path / "merged"
    difference = runs.export_merged(trained.run_dir, out)
    assert difference < 1e-5
    merged = ToyModel(0)
    merged.load_state_dict(load_file(str(out / "model.safetensors")))
    task, base, model, _, _ = runs.open_adapter(trained.run_dir)
    x = torch.randn(7, 4)
    with torch.no_grad():
        assert torch.allclose(merged(x), model(x), atol=1e-5)
    with pytest.raises(OutputError, match="already exists"):
        runs.export_merged(trained.run_dir, out)


def test_merged_export_has_a_model_card_the_hub_reads(trained, tmp_path):
    from huggingface_hub import ModelCard

    runs.export_merged(trained.run_dir, tmp_path / "merged")
    card = ModelCard.load(tmp_path / "merged" / "README.md")
    assert card.data.library_name is None and "merged-lora" in card.data.tags  # the toy is no transformers model
    assert card.data.base_model is None  # "demo" is no Hub id: the Hub would link nowhere
    assert "lorakit predict toy --base THIS_FOLDER" in card.text and "rank 8" in card.text


def test_merge_keeps_the_delta_of_weight_normed_layers():
    """peft's own merge adds to a weight that weight norm recomputes: lost."""
    from peft import LoraConfig, get_peft_model
    from torch import nn
    from torch.nn.utils.parametrizations import weight_norm

    from lorakit.merge import merge

    torch.manual_seed(0)
    model = nn.Sequential(weight_norm(nn.Conv1d(8, 8, 1)), nn.Tanh(), nn.Conv1d(8, 4, 1))
    # A regex: the name "0" would also match "0.parametrizations.weight.0".
    peft_model = get_peft_model(model, LoraConfig(r=4, target_modules=r"(0|2)"))
    for name, p in peft_model.named_parameters():
        if "lora_B" in name:
            with torch.no_grad():
                p.normal_()
    x = torch.randn(2, 8, 5)
    with torch.no_grad():
        unmerged = peft_model(x)
        merged_model = merge(peft_model)
        assert torch.allclose(merged_model(x), unmerged, atol=1e-5)
    assert not any("lora" in n for n, _ in merged_model.named_parameters())


def test_weighted_merge_scales_each_delta(toy_host, toy_data, tmp_path):
    """w1*delta1 + w2*delta2: two runs merged at weights equal the weighted sum."""
    from lorakit.merge import merge_weighted

    runs_dirs = []
    for name, seed in (("one", 0), ("two", 1)):
        config = runs.load_config("toy", ["--data", str(toy_data), "--output", str(tmp_path / name), "--epochs", "2",
                                          "--train.seed", str(seed), "--lr", "0.02"])
        runs_dirs.append(runs.run(config, show_progress=False, evaluate=False).adapter_dir)
    base = ToyModel(0).state_dict()

    def delta(path, weight):
        merged = merge_weighted(ToyModel(0), [(path, weight)]).state_dict()
        return {k: merged[k] - base[k] for k in base}

    both = merge_weighted(ToyModel(0), [(runs_dirs[0], 0.7), (runs_dirs[1], 0.5)]).state_dict()
    d1, d2 = delta(runs_dirs[0], 1.0), delta(runs_dirs[1], 1.0)
    for key in base:
        assert torch.allclose(both[key], base[key] + 0.7 * d1[key] + 0.5 * d2[key], atol=1e-5)
    assert any(d1[k].abs().max() > 1e-3 for k in base)
