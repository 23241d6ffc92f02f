"""LoRA layers keep a norm's or activation's input instead of its output: the
same losses and gradients as peft's own path, less kept for the backward pass."""

import copy
import importlib

import pytest
import torch
from torch import nn
from transformers.activations import ACT2FN

from lora_steps import Checkpointed, measured_step
from lorakit import runs
from lorakit.config import LoraSettings
from lorakit.lora import inject
from lorakit.lora_dropout import DropoutInsideLinear, recompute_lora_dropout
from lorakit.lora_inputs import InputRecomputedDropoutInsideLinear, InputRecomputedLinear, recompute_lora_inputs
from lorakit.planning import LiveTensors

BATCH, LENGTH, WIDTH, INNER = 8, 100, 64, 256


class Block(nn.Module):
    """A pre-norm transformer block's shape: a LayerNorm read by two adapted
    projections, an MLP whose adapted second layer reads a GELU."""

    def __init__(self, modify_norm_input: bool = False, activation: str = "gelu"):
        super().__init__()
        self.embed = nn.Linear(32, WIDTH)
        self.norm = nn.LayerNorm(WIDTH)
        self.q, self.k = nn.Linear(WIDTH, WIDTH), nn.Linear(WIDTH, WIDTH)
        self.fc1, self.act, self.fc2 = nn.Linear(WIDTH, INNER), ACT2FN[activation], nn.Linear(INNER, WIDTH)
        self.modify_norm_input = modify_norm_input

    def forward(self, x):
        embedded = self.embed(x)
        normed = self.norm(embedded)
        hidden = embedded + self.q(normed) * self.k(normed).sigmoid()
        if self.modify_norm_input:
            embedded.mul_(0.5)  # the norm's input, changed after the norm read it
        return (hidden + self.fc2(self.act(self.fc1(hidden)))).square().mean()


def _peft_model(dropout: float = 0.0, **block):
    torch.manual_seed(0)
    model = inject(Block(**block), LoraSettings(r=4, alpha=8, dropout=dropout), ["q", "k", "fc1", "fc2"], [])
    for name, p in model.named_parameters():
        if "lora_B" in name:  # peft starts B at zero; a non-zero B makes every gradient non-trivial
            nn.init.normal_(p, std=0.1)
    model.base_model.model.embed.requires_grad_(True)  # the norm's input needs a gradient, as in a deeper model
    return model


def _lighter(model):
    return recompute_lora_inputs(recompute_lora_dropout(copy.deepcopy(model)))


def _assert_same_step(first, second):
    loss, grads, _, after = first
    loss_b, grads_b, _, after_b = second
    assert torch.equal(loss, loss_b) and torch.equal(after, after_b)
    assert grads.keys() == grads_b.keys() and len(grads) == 10
    for name in grads:
        assert torch.equal(grads[name], grads_b[name]), name


@pytest.mark.parametrize("dropout", [0.0, 0.2])
def test_results_and_gradients_equal_peft_s_and_the_outputs_are_not_kept(dropout):
    x = torch.randn(BATCH, LENGTH, 32)
    peft_own, lighter = _peft_model(dropout), _lighter(_peft_model(dropout))
    types = {type(lighter.base_model.model.q.lora_A["default"]), type(lighter.base_model.model.fc2.lora_A["default"])}
    assert types == {InputRecomputedDropoutInsideLinear if dropout else InputRecomputedLinear}
    peft_step, lighter_step = measured_step(peft_own, x), measured_step(lighter, x)
    _assert_same_step(peft_step, lighter_step)
    # Without dropout peft keeps the norm's and the GELU's outputs for the adapters' gradients, and
    # nothing else does; here exactly those bytes go (with dropout, the dropout's copies go too).
    norm_and_gelu_outputs = BATCH * LENGTH * (WIDTH + INNER) * 4
    no_dropout_kept = measured_step(_peft_model(0.0), x)[2]
    assert lighter_step[2] == no_dropout_kept - norm_and_gelu_outputs
    assert peft_step[2] >= no_dropout_kept


@pytest.mark.parametrize("dropout", [0.0, 0.2])
def test_under_bf16_autocast_too(dropout):
    """Autocast's own low-precision copy of the norm's output, and peft's cast
    of the GELU's bf16 output to the adapter's fp32, are recomputed too."""
    x = torch.randn(BATCH, LENGTH, 32)
    peft_step = measured_step(_peft_model(dropout), x, autocast=True)
    lighter_step = measured_step(_lighter(_peft_model(dropout)), x, autocast=True)
    _assert_same_step(peft_step, lighter_step)
    assert lighter_step[2] <= 0.7 * peft_step[2]


def test_an_activation_that_keeps_its_output_is_left_alone():
    """ReLU's backward keeps its output: keeping its input instead would add, not save."""
    x = torch.randn(BATCH, LENGTH, 32)
    peft_step = measured_step(_peft_model(activation="relu"), x)
    lighter_step = measured_step(_lighter(_peft_model(activation="relu")), x)
    _assert_same_step(peft_step, lighter_step)
    assert lighter_step[2] == peft_step[2] - BATCH * LENGTH * WIDTH * 4  # the norm's output only


def test_with_peft_s_own_dropout_it_steps_aside():
    """There ``lora_A`` reads a dropped copy, not the norm's output."""
    x = torch.randn(BATCH, LENGTH, 32)
    peft_own = _peft_model(0.2)
    lighter = recompute_lora_inputs(copy.deepcopy(peft_own))
    _assert_same_step(measured_step(peft_own, x), measured_step(lighter, x))


def test_an_input_changed_in_place_is_an_error_not_a_wrong_gradient():
    model = _lighter(_peft_model(modify_norm_input=True))
    loss = model(torch.randn(2, 10, 32))
    with pytest.raises(RuntimeError, match="changed in place.*--train.recompute_inputs false"):
        loss.backward()


def test_inside_gradient_checkpointing_it_steps_aside():
    """Checkpointing keeps only a block's input; the block's recomputation must
    not be made to keep a norm's input as well."""
    x = torch.randn(BATCH, LENGTH, 32)
    peft_step = measured_step(Checkpointed(_peft_model(0.2)), x)
    lighter_step = measured_step(Checkpointed(_lighter(_peft_model(0.2))), x)
    _assert_same_step(peft_step, lighter_step)
    assert lighter_step[2] == peft_step[2]


def test_the_adapter_s_names_and_config_do_not_change_and_the_model_copies():
    model = _peft_model(0.2)
    names = list(model.state_dict())
    model = recompute_lora_inputs(recompute_lora_dropout(model))
    hooks = len(model.base_model.model.norm._forward_hooks)
    recompute_lora_inputs(model)  # a second call adds no hooks
    assert len(model.base_model.model.norm._forward_hooks) == hooks == 1
    assert list(model.state_dict()) == names
    assert model.peft_config["default"].lora_dropout == 0.2
    layer = copy.deepcopy(model).base_model.model.fc2.lora_A["default"]
    assert type(layer) is InputRecomputedDropoutInsideLinear and isinstance(layer, DropoutInsideLinear)
    assert getattr(importlib.import_module(type(layer).__module__), type(layer).__qualname__) is type(layer)


@pytest.mark.parametrize("flags, kind", [([], InputRecomputedDropoutInsideLinear),
                                         (["--train.recompute_inputs", "false"], DropoutInsideLinear)])
def test_a_run_s_training_model_keeps_inputs_unless_told_not_to(toy_host, toy_data, tmp_path, flags, kind):
    config = runs.load_config("toy", ["--data", str(toy_data), "--output", str(tmp_path / "run"),
                                      "--lora.dropout", "0.2", *flags])
    made = runs.training_model(runs.make_task(config), config)
    kinds = {type(m) for name, m in made.model.named_modules() if name.endswith("lora_A.default")}
    assert kinds == {kind}


@pytest.mark.parametrize("recipe", ["caption-demo", "music-demo"])
def test_on_the_demo_models_the_same_step_keeps_less(recipe, tmp_path):
    """transformers' BLIP and MusicGen, as a run builds them: bit-equal loss and
    gradients, and the norms' and GELUs' outputs no longer kept."""
    steps = {}
    for keep_inputs in (False, True):
        config = runs.load_config(recipe, ["--output", str(tmp_path / "run"),
                                           "--train.recompute_inputs", str(keep_inputs).lower()])
        made = runs.training_model(runs.make_task(config), config)
        examples = made.splits.train[:2]
        steps[keep_inputs] = _task_step(made, made.task.collate(made.base, examples))
    (loss, grads, kept), (loss_b, grads_b, kept_b) = steps[False], steps[True]
    assert torch.equal(loss, loss_b)
    assert grads.keys() == grads_b.keys() and grads
    for name in grads:
        assert torch.equal(grads[name], grads_b[name]), name
    assert kept_b <= 0.85 * kept


def _task_step(made, batch):
    torch.manual_seed(3)
    made.model.train()
    with LiveTensors() as meter:
        loss = made.task.loss(made.base, made.model, batch)
        kept = meter.live
        loss.backward()
    grads = {n: p.grad.clone() for n, p in made.model.named_parameters() if p.requires_grad}
    return loss.detach(), grads, kept
