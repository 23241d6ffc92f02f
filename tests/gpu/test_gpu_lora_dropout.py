"""LoRA dropout recomputed in the backward pass, on CUDA in bf16 autocast:
the same losses and gradients as peft's own dropout (the CUDA generator's
state is what the recomputation restores there)."""

import copy

import pytest
import torch
from torch import nn

from lorakit.config import LoraSettings
from lorakit.lora import inject
from lorakit.lora_dropout import recompute_lora_dropout

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")]


def _step(model, x):
    torch.cuda.manual_seed(5)
    with torch.autocast("cuda", dtype=torch.bfloat16):
        loss = model(x).float().square().mean()
    loss.backward()
    grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.requires_grad}
    model.zero_grad(set_to_none=True)
    return loss.detach(), grads


def test_recomputed_dropout_equals_peft_s_on_cuda_in_bf16():
    torch.manual_seed(0)
    block = nn.Sequential(nn.Linear(64, 256), nn.GELU(), nn.Linear(256, 64))
    peft_own = inject(block, LoraSettings(r=8, alpha=16, dropout=0.3), ["0", "2"], []).cuda().train()
    for name, p in peft_own.named_parameters():
        if "lora_B" in name:
            nn.init.normal_(p, std=0.1)
    recomputed = recompute_lora_dropout(copy.deepcopy(peft_own))
    x = torch.randn(8, 128, 64, device="cuda")
    loss, grads = _step(peft_own, x)
    loss_r, grads_r = _step(recomputed, x)
    assert torch.equal(loss, loss_r)
    for name in grads:
        assert torch.equal(grads[name], grads_r[name]), name
