"""LoRA injection: which layers targets select, the layers refused before peft
sees them, and dilated convolutions, whose LoRA peft 0.21 builds without the
dilation (lorakit copies it)."""

import pytest
import torch
from torch import nn

from lorakit.errors import ConfigError
from lorakit.lora import check_targets, targeted_modules


def _convs():
    return nn.Sequential(nn.Conv1d(8, 8, 3, padding=1), nn.Conv1d(8, 8, 3, dilation=2, padding=2),
                         nn.Conv1d(8, 8, 1, groups=2), nn.ConvTranspose1d(8, 8, 4, stride=2), nn.Linear(8, 8))


def test_grouped_and_transposed_convolutions_are_refused_with_a_config_error():
    with pytest.raises(ConfigError) as info:
        check_targets(_convs(), r"[0-4]")
    message = str(info.value)
    assert "2 (Conv1d with groups 2), 3 (transposed convolution)" in message and "--lora.targets" in message


def test_plain_and_dilated_layers_pass():
    check_targets(_convs(), ["0", "1", "4"])


def _dilated_with_lora(tmp_path=None):
    """A dilated, reflect-padded conv with LoRA whose delta is not zero."""
    from lorakit.config import LoraSettings
    from lorakit.lora import inject

    torch.manual_seed(0)
    model = inject(nn.Sequential(nn.Conv1d(4, 6, 3, dilation=3, padding=3, padding_mode="reflect")),
                   LoraSettings(r=2, alpha=2), ["0"], [])
    layer = model.base_model.model[0]
    with torch.no_grad():
        layer.lora_B["default"].weight.normal_()
    return model, layer


def _reference(layer, x):
    """The base conv with the LoRA delta added to its weight: what the adapter must compute."""
    base = layer.base_layer
    padded = nn.functional.pad(x, (3, 3), mode="reflect")
    return nn.functional.conv1d(padded, base.weight + layer.get_delta_weight("default"), base.bias, dilation=3)


def test_lora_on_a_dilated_conv_computes_the_merged_convolution():
    model, layer = _dilated_with_lora()
    x = torch.randn(2, 4, 25)
    with torch.no_grad():
        out, expected = model(x), _reference(layer, x)
    assert out.shape == (2, 6, 25)
    assert torch.allclose(out, expected, atol=1e-5)
    assert not torch.allclose(out, layer.base_layer(x), atol=1e-3)  # the LoRA branch is really on


def test_a_saved_dilated_adapter_loads_with_its_geometry(tmp_path):
    from lorakit.artifact import load_adapter

    model, layer = _dilated_with_lora()
    model.save_pretrained(tmp_path / "adapter")
    loaded = load_adapter(nn.Sequential(nn.Conv1d(4, 6, 3, dilation=3, padding=3, padding_mode="reflect")),
                          tmp_path / "adapter")
    with torch.no_grad():
        loaded.base_model.model[0].base_layer.load_state_dict(layer.base_layer.state_dict())
        x = torch.randn(1, 4, 30)
        assert torch.allclose(loaded(x), _reference(layer, x), atol=1e-5)


def test_a_regex_matches_whole_names_and_a_list_matches_suffixes():
    model = nn.Sequential(nn.Sequential(nn.Linear(2, 2), nn.Linear(2, 2)), nn.Linear(2, 2))
    assert [n for n, _ in targeted_modules(model, r"0\.1")] == ["0.1"]
    assert [n for n, _ in targeted_modules(model, "1")] == ["1"]  # not "0.1": full match
    assert [n for n, _ in targeted_modules(model, ["1"])] == ["0.1", "1"]  # suffixes


def test_a_run_refuses_a_grouped_target_before_training(toy_host, toy_data, tmp_path):
    """check_targets runs on the user's --lora.targets in every run."""
    from lorakit import runs
    from toy_plugin import ToyTask

    class DilatedToy(ToyTask):
        name = "toy-grouped"

        def load_base(self, name):
            base = super().load_base(name)
            base.model.extra = nn.Conv1d(4, 4, 3, groups=2)
            return base

    toy_host.add_task(DilatedToy)
    try:
        config = runs.load_config("toy-grouped", ["--data", str(toy_data), "--output", str(tmp_path / "r"),
                                                  "--lora.targets", "[encoder, extra]"])
        with pytest.raises(ConfigError, match="extra .Conv1d with groups 2"):
            runs.run(config, show_progress=False)
    finally:
        del toy_host.tasks["toy-grouped"]
    assert not (tmp_path / "r").exists()


def test_targets_that_select_nothing_name_the_suffixes_the_base_has():
    from lorakit.config import LoraSettings
    from lorakit.lora import inject

    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.q_proj, self.v_proj, self.norm = nn.Linear(4, 4), nn.Linear(4, 4), nn.LayerNorm(4)

    model = nn.Sequential(Block(), Block())
    with pytest.raises(ConfigError) as info:
        inject(model, LoraSettings(), ["query", "value"], [])
    message = str(info.value)
    assert "end in: q_proj, v_proj." in message and ".." not in message


def test_the_layers_lora_went_on_are_counted_by_top_level_part():
    # What a run prints: a regex that misses one part's layers shows there.
    from lorakit.config import LoraSettings
    from lorakit.lora import inject, lora_layers_by_part

    model = nn.Module()
    model.encoder = nn.Sequential(nn.Linear(4, 4), nn.Linear(4, 4))
    model.decoder = nn.Sequential(nn.Conv1d(4, 4, 3), nn.Conv1d(4, 4, 1))
    wrapped = inject(model, LoraSettings(r=2), r"encoder\.\d|decoder\.1", [])
    assert lora_layers_by_part(wrapped) == {"encoder": 2, "decoder": 1}


@pytest.mark.slow  # two fresh interpreters importing torch, transformers and peft
def test_wrapping_a_transformers_model_prints_no_future_warning_the_user_cannot_act_on():
    """peft reads transformers' deprecated ``is_gradient_checkpointing`` on
    every wrap; with lorakit imported that FutureWarning is not shown (it is
    made an error here, so showing it would fail the command)."""
    import subprocess
    import sys

    code = """
import transformers
from lorakit.config import LoraSettings
from lorakit.lora import inject
config = transformers.BertConfig(vocab_size=50, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                                 intermediate_size=32)
inject(transformers.BertModel(config), LoraSettings(), ["query"], [])
print("wrapped")
"""
    done = subprocess.run([sys.executable, "-W", "error::FutureWarning", "-c", code], capture_output=True, text=True)
    assert done.returncode == 0 and "wrapped" in done.stdout, done.stderr[-2000:]
    bare = subprocess.run([sys.executable, "-W", "error::FutureWarning", "-c",
                           code.replace("from lorakit.lora import inject", "from peft import get_peft_model, LoraConfig")
                               .replace('inject(transformers.BertModel(config), LoraSettings(), ["query"], [])',
                                        'get_peft_model(transformers.BertModel(config), LoraConfig(target_modules=["query"]))')
                               .replace("from lorakit.config import LoraSettings", "")],
                          capture_output=True, text=True)
    assert "is_gradient_checkpointing" in bare.stderr, "peft no longer trips the warning: drop lorakit's filter"
