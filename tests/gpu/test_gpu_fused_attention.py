"""BLIP's fused attention on CUDA in bf16 autocast, where SDPA picks the
flash or memory-efficient kernels: the loss and gradients of the stock eager
layers, and beam-search captions the same."""

import copy

import pytest
import torch
from transformers import BlipForConditionalGeneration

from lorakit_blip.attention import fuse_attention
from lorakit_caption.task import DEMO_BASE

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")]


def test_fused_attention_matches_eager_on_cuda_in_bf16():
    stock = BlipForConditionalGeneration.from_pretrained(DEMO_BASE).cuda().train()
    fused = copy.deepcopy(stock)
    assert fuse_attention(fused) > 0
    generator = torch.Generator().manual_seed(0)
    size = stock.config.vision_config.image_size
    pixels = torch.randn(8, 3, size, size, generator=generator).cuda()
    ids = torch.randint(5, stock.config.text_config.vocab_size, (8, 12), generator=generator)
    ids[:, 0] = stock.config.text_config.bos_token_id
    mask = torch.ones_like(ids)
    mask[1::2, 8:] = 0
    batch = dict(pixel_values=pixels, input_ids=ids.cuda(), attention_mask=mask.cuda(),
                 labels=ids.masked_fill(mask == 0, -100).cuda())
    losses = []
    for model in (stock, fused):
        with torch.autocast("cuda", dtype=torch.bfloat16):
            loss = model(**batch).loss
        loss.backward()
        losses.append(loss.item())
    assert losses[1] == pytest.approx(losses[0], rel=2e-2)
    # bf16 rounds each element differently: compare all gradients as one vector.
    grads = [torch.cat([p.grad.float().flatten() for p in m.parameters() if p.grad is not None])
             for m in (stock, fused)]
    assert float((grads[0] - grads[1]).norm() / grads[0].norm()) < 0.03
    stock.eval(), fused.eval()
    with torch.inference_mode(), torch.autocast("cuda", dtype=torch.bfloat16):
        captions = [m.generate(pixel_values=pixels, num_beams=3, max_new_tokens=12) for m in (stock, fused)]
    # bf16 rounding may flip a near tie: most captions must be the same.
    same = sum(torch.equal(a, b) for a, b in zip(*captions))
    assert same >= 6, same
