"""Dropout keeping boolean masks on the CPU: torch's numbers, a quarter of the
mask's bytes, and torch's own function back afterwards."""

import dataclasses
import threading

import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import load_file
from torch import nn

from lora_steps import Checkpointed, measured_step
from lorakit import runs
from lorakit.dropout_masks import bool_dropout_masks

CPU = torch.device("cpu")
WIDTH, ROWS = 64, 6 * 40


class Block(nn.Module):
    """Trained layers whose outputs drop out: through ``nn.Dropout``, and
    through the function as MusicGen's and BART's layers call it."""

    def __init__(self):
        super().__init__()
        self.first, self.second = nn.Linear(WIDTH, WIDTH), nn.Linear(WIDTH, WIDTH)
        self.drop = nn.Dropout(0.3)

    def forward(self, x):
        hidden = self.drop(self.first(x))
        hidden = nn.functional.dropout(self.second(hidden), p=0.1, training=self.training)
        return hidden.square().mean()


def _block():
    torch.manual_seed(0)
    return Block()


def _with_bool_masks(model):
    class Wrapped(nn.Module):
        def __init__(self):
            super().__init__()
            self.inner = model

        def forward(self, x):
            with bool_dropout_masks(CPU, True):
                return self.inner(x)

    return Wrapped()


@pytest.mark.parametrize("autocast", [False, True])
def test_the_same_loss_gradients_and_random_stream_as_torch_s_dropout_with_a_quarter_of_the_mask(autocast):
    x = torch.randn(6, 40, WIDTH)
    loss, grads, kept, after = measured_step(_block(), x, autocast=autocast)
    loss_b, grads_b, kept_b, after_b = measured_step(_with_bool_masks(_block()), x, autocast=autocast)
    assert torch.equal(loss, loss_b) and torch.equal(after, after_b)
    assert [torch.equal(grads[n], grads_b[f"inner.{n}"]) for n in grads] == [True] * 4
    # Two masks of ROWS x WIDTH elements: torch's in the input's dtype, these in one byte.
    element = 2 if autocast else 4
    assert kept - kept_b == 2 * ROWS * WIDTH * (element - 1)
    assert not torch.equal(measured_step(_with_bool_masks(_block()), x, seed=6)[0], loss)  # the masks matter


def test_steps_aside_where_nothing_is_kept_or_torch_must_compute_it():
    x = torch.randn(6, 40, WIDTH)
    # A checkpointed block (--train.gradient_checkpointing) is run again in the
    # backward pass, after the forward pass, so by torch's own dropout, which
    # must keep what the first run kept.
    loss, grads, _, after = measured_step(_with_bool_masks(Checkpointed(_block())), x)
    loss_t, grads_t, _, after_t = measured_step(Checkpointed(_block()), x)
    assert torch.equal(loss, loss_t) and torch.equal(after, after_t)
    assert [torch.equal(grads[f"inner.{n}"], grads_t[n]) for n in grads_t] == [True] * 4
    with bool_dropout_masks(CPU, True):
        torch.manual_seed(1)
        plain = F.dropout(x, 0.5)  # no gradient needed
        torch.manual_seed(1)
        assert torch.equal(plain, torch.dropout(x, 0.5, True)) and plain.grad_fn is None
        inplace = x.clone()
        assert F.dropout(inplace, 0.5, inplace=True) is inplace


def test_torch_s_function_is_back_after_the_pass_even_one_that_failed_and_only_then():
    torch_dropout = F.dropout
    with pytest.raises(ValueError):
        with bool_dropout_masks(CPU, True):
            assert F.dropout is not torch_dropout
            raise ValueError("a forward pass that failed")
    assert F.dropout is torch_dropout
    # Two passes at once (another thread's, or nested): the first to end leaves the other's in place.
    inside, leave = threading.Event(), threading.Event()

    def other_pass():
        with bool_dropout_masks(CPU, True):
            inside.set()
            leave.wait(10)

    thread = threading.Thread(target=other_pass)
    thread.start()
    inside.wait(10)
    with bool_dropout_masks(CPU, True):
        pass
    assert F.dropout is not torch_dropout
    leave.set()
    thread.join(10)
    assert F.dropout is torch_dropout
    for device, enabled in ((torch.device("cuda"), True), (CPU, False)):  # a GPU keeps booleans already
        with bool_dropout_masks(device, enabled):
            assert F.dropout is torch_dropout


def test_a_training_run_keeps_bool_masks_for_the_music_base_s_dropout_and_trains_the_same_adapter(tmp_path,
                                                                                                  monkeypatch):
    """The demo MusicGen drops out in its decoder layers, as MusicGen-small
    does: the run's forward passes go through the boolean masks, and the
    adapter is the one torch's own dropout trains, bit for bit."""
    import lorakit.dropout_masks

    calls = []
    original = lorakit.dropout_masks._BoolMaskDropout.apply
    monkeypatch.setattr(lorakit.dropout_masks._BoolMaskDropout, "apply",
                        lambda *args: calls.append(1) or original(*args))
    adapters = {}
    for masks in ("true", "false"):
        config = runs.load_config("music-demo", ["--output", str(tmp_path / masks), "--train.max_steps", "2",
                                                 "--train.batch_size", "2", "--train.bool_dropout_masks", masks])
        config = dataclasses.replace(config, train=dataclasses.replace(config.train, eval_every=100))
        outcome = runs.run(config, show_progress=False, evaluate=False)
        adapters[masks] = load_file(str(outcome.adapter_dir / "adapter_model.safetensors"))
        if masks == "true":
            assert calls, "no dropout of the run went through the boolean masks"
            seen = len(calls)
    assert len(calls) == seen  # none with --train.bool_dropout_masks false
    assert adapters["true"].keys() == adapters["false"].keys()
    assert all(torch.equal(adapters["true"][k], adapters["false"][k]) for k in adapters["true"])
