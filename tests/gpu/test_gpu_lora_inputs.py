"""LoRA layers keeping a norm's or activation's input, on CUDA in bf16
autocast (CUDA's autocast runs LayerNorm in fp32 and GELU in bf16): the same
losses and gradients as peft's own path, and less kept for the backward pass."""

import copy

import pytest
import torch
from torch import nn

from lorakit.config import LoraSettings
from lorakit.lora import inject
from lorakit.lora_inputs import recompute_lora_inputs

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")]


class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.embed, self.norm = nn.Linear(64, 256), nn.LayerNorm(256)
        self.q, self.fc1, self.act, self.fc2 = nn.Linear(256, 256), nn.Linear(256, 1024), nn.GELU(), nn.Linear(1024, 256)

    def forward(self, x):
        hidden = self.embed(x)
        hidden = hidden + self.q(self.norm(hidden))
        return hidden + self.fc2(self.act(self.fc1(hidden)))


def _step(model, x):
    torch.cuda.synchronize()
    before = torch.cuda.memory_allocated()
    with torch.autocast("cuda", dtype=torch.bfloat16):
        loss = model(x).float().square().mean()
    kept = torch.cuda.memory_allocated() - before
    loss.backward()
    grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.requires_grad}
    model.zero_grad(set_to_none=True)
    return loss.detach(), grads, kept


def test_kept_inputs_equal_peft_s_on_cuda_in_bf16_and_keep_less():
    torch.manual_seed(0)
    peft_own = inject(Block(), LoraSettings(r=8, alpha=16), ["q", "fc1", "fc2"], []).cuda().train()
    for name, p in peft_own.named_parameters():
        if "lora_B" in name:
            nn.init.normal_(p, std=0.1)
    peft_own.base_model.model.embed.requires_grad_(True)
    lighter = recompute_lora_inputs(copy.deepcopy(peft_own))
    x = torch.randn(8, 512, 64, device="cuda")
    loss, grads, kept = _step(peft_own, x)
    loss_l, grads_l, kept_l = _step(lighter, x)
    assert torch.equal(loss, loss_l)
    for name in grads:
        assert torch.equal(grads[name], grads_l[name]), name
    assert kept_l <= 0.8 * kept
