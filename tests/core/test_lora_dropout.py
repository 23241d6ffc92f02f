"""LoRA dropout recomputed in the backward pass: the same numbers as peft's own
dropout, without keeping a dropped copy of every adapted layer's input."""

import copy
import importlib

import pytest
import torch
from torch import nn

from lora_steps import Checkpointed, measured_step
from lorakit import runs
from lorakit.config import LoraSettings
from lorakit.lora import inject
from lorakit.lora_dropout import DropoutInsideConv1d, DropoutInsideLinear, recompute_lora_dropout


class Block(nn.Module):
    """Linear layers and a dilated conv, as in the built-in models."""

    def __init__(self):
        super().__init__()
        self.up = nn.Linear(32, 128)
        self.down = nn.Linear(128, 32)
        self.conv = nn.Conv1d(32, 32, 3, dilation=2, padding=2)

    def forward(self, x):
        hidden = self.down(torch.relu(self.up(x)))
        return self.conv(hidden.transpose(1, 2)).square().mean()


def _peft_model(dropout: float, **settings):
    torch.manual_seed(0)
    model = inject(Block(), LoraSettings(r=4, alpha=8, dropout=dropout, **settings), ["up", "down", "conv"], [])
    for name, p in model.named_parameters():
        if "lora_B" in name:  # peft starts B at zero; a non-zero B makes every gradient non-trivial
            torch.nn.init.normal_(p, std=0.1)
    return model


def test_results_gradients_and_random_stream_equal_peft_s_own_dropout():
    x = torch.randn(6, 50, 32)
    peft_own = _peft_model(0.3)
    recomputed = recompute_lora_dropout(copy.deepcopy(peft_own))
    assert type(recomputed.base_model.model.up.lora_A["default"]) is DropoutInsideLinear
    assert type(recomputed.base_model.model.conv.lora_A["default"]) is DropoutInsideConv1d
    loss, grads, _, after = measured_step(peft_own, x)
    loss_r, grads_r, _, after_r = measured_step(recomputed, x)
    assert torch.equal(loss, loss_r) and torch.equal(after, after_r)
    assert grads.keys() == grads_r.keys() and len(grads) == 6
    for name in grads:
        assert torch.equal(grads[name], grads_r[name]), name
    # Another seed draws other masks: the equality above is not dropout doing nothing.
    assert not torch.equal(measured_step(recomputed, x, seed=6)[0], loss)
    with torch.no_grad():  # training mode without gradients (no checkpoint): the same masks again
        torch.manual_seed(5)
        assert torch.equal(recomputed(x), loss)
    peft_own.eval(), recomputed.eval()
    assert torch.equal(peft_own(x), recomputed(x))


def test_dropout_keeps_no_more_than_no_dropout():
    x = torch.randn(6, 200, 32)
    without = measured_step(_peft_model(0.0), x)[2]
    peft_own = measured_step(_peft_model(0.3), x)[2]
    recomputed = measured_step(recompute_lora_dropout(_peft_model(0.3)), x)[2]
    assert peft_own > 1.8 * without  # a dropped copy and a mask per adapted layer
    assert recomputed <= 1.01 * without


def test_the_adapter_s_names_and_config_do_not_change_and_the_model_copies(tmp_path):
    model = _peft_model(0.3)
    names = list(model.state_dict())
    recompute_lora_dropout(model)
    assert list(model.state_dict()) == names
    assert model.peft_config["default"].lora_dropout == 0.3
    copied = copy.deepcopy(model)
    layer = copied.base_model.model.down.lora_A["default"]
    assert type(layer) is DropoutInsideLinear and layer.dropout_p == 0.3
    # The swapped-in class is found by its module and name, as anything that rebuilds a model looks it up.
    assert getattr(importlib.import_module(type(layer).__module__), type(layer).__qualname__) is DropoutInsideLinear


@pytest.mark.parametrize("settings", [{"dropout": 0.0}, {"dropout": 0.3, "dora": True}])
def test_no_dropout_and_dora_are_left_to_peft(settings):
    model = recompute_lora_dropout(_peft_model(**settings))
    layer = model.base_model.model.up
    assert type(layer.lora_A["default"]) is nn.Linear
    assert type(layer.lora_dropout["default"]) is (nn.Dropout if settings["dropout"] else nn.Identity)


@pytest.mark.parametrize("flags, kind", [([], DropoutInsideLinear), (["--train.recompute_dropout", "false"], nn.Linear)])
def test_a_run_s_training_model_recomputes_its_dropout_unless_told_not_to(toy_host, toy_data, tmp_path, flags, kind):
    config = runs.load_config("toy", ["--data", str(toy_data), "--output", str(tmp_path / "run"),
                                      "--lora.dropout", "0.2", "--train.recompute_inputs", "false", *flags])
    made = runs.training_model(runs.make_task(config), config)
    kinds = {type(m) for name, m in made.model.named_modules() if name.endswith("lora_A.default")}
    assert kinds == {kind}


def test_inside_gradient_checkpointing_the_gradients_still_equal_peft_s():
    """--train.gradient_checkpointing recomputes whole blocks; the dropout's own
    recomputation nests inside and draws the same masks."""
    x = torch.randn(4, 30, 32)
    peft_own = _peft_model(0.3)
    recomputed = recompute_lora_dropout(copy.deepcopy(peft_own))
    loss, grads, _, _ = measured_step(Checkpointed(peft_own), x)
    loss_r, grads_r, _, _ = measured_step(Checkpointed(recomputed), x)
    assert torch.equal(loss, loss_r)
    for name in grads:
        assert torch.equal(grads[name], grads_r[name]), name
