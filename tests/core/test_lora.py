"""LoRA injection: which layers targets select, and the layers refused before peft sees them."""

import pytest
import torch
from torch import nn

from lorakit.errors import ConfigError
from lorakit.lora import check_targets, targeted_modules


def _convs():
    return nn.Sequential(nn.Conv1d(8, 8, 3, padding=1), nn.Conv1d(8, 8, 3, dilation=2, padding=2),
                         nn.Conv1d(8, 8, 1, groups=2), nn.ConvTranspose1d(8, 8, 4, stride=2), nn.Linear(8, 8))


def test_a_dilated_conv1d_target_is_refused_with_a_config_error():
    with pytest.raises(ConfigError) as info:
        check_targets(_convs(), ["1"])
    message = str(info.value)
    assert "1 (Conv1d with dilation 2, groups 1)" in message and "--lora.targets" in message


def test_grouped_and_transposed_convolutions_are_refused_too():
    with pytest.raises(ConfigError, match=r"2 \(Conv1d with dilation 1, groups 2\), 3 \(transposed convolution\)"):
        check_targets(_convs(), r"[0-4]")


def test_plain_layers_pass():
    check_targets(_convs(), ["0", "4"])


def test_a_regex_matches_whole_names_and_a_list_matches_suffixes():
    model = nn.Sequential(nn.Sequential(nn.Linear(2, 2), nn.Linear(2, 2)), nn.Linear(2, 2))
    assert [n for n, _ in targeted_modules(model, r"0\.1")] == ["0.1"]
    assert [n for n, _ in targeted_modules(model, "1")] == ["1"]  # not "0.1": full match
    assert [n for n, _ in targeted_modules(model, ["1"])] == ["0.1", "1"]  # suffixes


def test_a_run_refuses_a_dilated_target_before_training(toy_host, toy_data, tmp_path):
    """check_targets runs on the user's --lora.targets in every run."""
    from lorakit import runs
    from toy_plugin import ToyTask

    class DilatedToy(ToyTask):
        name = "toy-dilated"

        def load_base(self, name):
            base = super().load_base(name)
            base.model.extra = nn.Conv1d(4, 4, 3, dilation=2)
            return base

    toy_host.add_task(DilatedToy)
    try:
        config = runs.load_config("toy-dilated", ["--data", str(toy_data), "--output", str(tmp_path / "r"),
                                                  "--lora.targets", "[encoder, extra]"])
        with pytest.raises(ConfigError, match="extra .Conv1d with dilation 2"):
            runs.run(config, show_progress=False)
    finally:
        del toy_host.tasks["toy-dilated"]
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
