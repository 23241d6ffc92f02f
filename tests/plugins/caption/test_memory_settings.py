"""Gradient checkpointing and a bf16 base on a real BLIP (the demo base)."""

import pytest
import torch

from lorakit import runs

CATALOG = "samples/caption/catalog"


def _one_backward(checkpointing: bool) -> tuple[dict[str, torch.Tensor], int]:
    """LoRA gradients of one training batch, and how often the first vision
    layer ran forward (twice per step when its activations are recomputed)."""
    flags = ["--data", CATALOG, "--base", "demo", "--train.gradient_checkpointing", str(checkpointing).lower()]
    config = runs.load_config("caption", flags)
    made = runs.training_model(runs.make_task(config), config)
    model, base = made.model, made.base
    layer = model.get_base_model().vision_model.encoder.layers[0].mlp  # inside the checkpointed forward
    calls = []
    layer.register_forward_pre_hook(lambda *_: calls.append(1))  # recomputation may stop before a post-hook
    model.train()
    batch = made.task.collate(base, made.splits.train[:4])
    made.task.loss(base, model, batch).backward()
    grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.requires_grad and p.grad is not None}
    return grads, len(calls)


def test_gradient_checkpointing_recomputes_and_gives_the_same_gradients():
    plain, plain_calls = _one_backward(False)
    checkpointed, checkpointed_calls = _one_backward(True)
    assert (plain_calls, checkpointed_calls) == (1, 2)
    assert plain.keys() == checkpointed.keys() and len(plain) > 10
    for name in plain:
        torch.testing.assert_close(checkpointed[name], plain[name], rtol=1e-4, atol=1e-6)


def test_a_bf16_base_trains_fp32_lora_and_reports_on_the_full_precision_base(tmp_path):
    flags = ["--data", CATALOG, "--base", "demo", "--output", str(tmp_path / "run"), "--base_dtype", "bf16",
             "--train.max_steps", "4", "--train.batch_size", "8", "--data.max_examples", "40"]
    config = runs.load_config("caption", flags)
    made = runs.training_model(runs.make_task(config), config)
    dtypes = {p.dtype for p in made.model.parameters() if p.requires_grad}
    frozen = {p.dtype for n, p in made.model.named_parameters() if not p.requires_grad and "layernorm" not in n}
    assert dtypes == {torch.float32} and frozen == {torch.bfloat16}
    del made
    from accelerate.state import AcceleratorState

    AcceleratorState._reset_state(True)  # the run's bf16 autocast is this process's only precision
    try:
        outcome = runs.run(config, show_progress=False)
    finally:
        AcceleratorState._reset_state(True)
    later = runs.evaluate_run(outcome.run_dir)
    assert outcome.report["test"]["adapter"] == pytest.approx(later["test"]["adapter"], rel=1e-6)
    assert outcome.report["test"]["base"] == pytest.approx(later["test"]["base"], rel=1e-6)
