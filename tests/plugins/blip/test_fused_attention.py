"""BLIP's attention fused into scaled_dot_product_attention: the function of
transformers' eager layers (training, bf16 autocast, beam search, VQA
answers), the stock state dict, the attention matrices no longer kept, and
the one deliberate difference: the answer decoder ignores question padding."""

import copy

import pytest
import torch
from transformers import BlipForConditionalGeneration, BlipForQuestionAnswering

from lorakit_blip.attention import FusedBlipAttention, FusedBlipTextSelfAttention, fuse_attention
from lorakit_caption.task import DEMO_BASE as CAPTION_DEMO
from lorakit_caption.task import CaptionTask
from lorakit_vqa.loading import DEMO_BASE as VQA_DEMO
from lorakit_vqa.loading import load_vqa_base


@pytest.fixture(scope="module")
def caption_pair():
    """The stock demo captioner and a fused copy, in training mode."""
    stock = BlipForConditionalGeneration.from_pretrained(CAPTION_DEMO)
    fused = copy.deepcopy(stock)
    assert fuse_attention(fused) == 6  # 2 vision layers, 2 text self-attention, 2 cross-attention
    return stock.train(), fused.train()


def caption_batch(model, batch=3):
    """Pixels and captions of unequal lengths (the padding mask matters)."""
    generator = torch.Generator().manual_seed(0)
    size = model.config.vision_config.image_size
    pixels = torch.randn(batch, 3, size, size, generator=generator)
    ids = torch.randint(5, model.config.text_config.vocab_size, (batch, 11), generator=generator)
    ids[:, 0] = model.config.text_config.bos_token_id
    mask = torch.ones_like(ids)
    mask[1, 7:] = 0
    mask[2, 4:] = 0
    return dict(pixel_values=pixels, input_ids=ids, attention_mask=mask, labels=ids.masked_fill(mask == 0, -100))


def test_training_loss_and_every_gradient_match_eager(caption_pair):
    stock, fused = caption_pair
    losses = []
    for model in caption_pair:
        model.zero_grad()
        loss = model(**caption_batch(model)).loss
        loss.backward()
        losses.append(loss.item())
    loss_stock, loss_fused = losses
    assert loss_fused == pytest.approx(loss_stock, rel=1e-6)
    for (name, a), (_, b) in zip(stock.named_parameters(), fused.named_parameters()):
        if a.grad is not None:
            assert torch.allclose(a.grad, b.grad, atol=1e-5, rtol=1e-4), name


def test_bf16_autocast_matches_eager_with_the_padding_mask(caption_pair):
    losses = []
    for model in caption_pair:
        with torch.autocast("cpu", dtype=torch.bfloat16):
            losses.append(model(**caption_batch(model)).loss.item())
    assert all(torch.isfinite(torch.tensor(losses)))
    assert losses[1] == pytest.approx(losses[0], rel=2e-2)


def test_beam_search_captions_are_the_same(caption_pair):
    stock, fused = (m.eval() for m in caption_pair)
    pixels = caption_batch(stock, batch=4)["pixel_values"]
    with torch.inference_mode():
        expected = stock.generate(pixel_values=pixels, num_beams=3, max_new_tokens=12)
        got = fused.generate(pixel_values=pixels, num_beams=3, max_new_tokens=12)
    stock.train(), fused.train()
    assert torch.equal(got, expected)


@pytest.fixture(scope="module")
def vqa_pair():
    """The VQA task's (fused) demo base and the stock model, in eval mode."""
    base = load_vqa_base("demo")
    assert any(isinstance(m, FusedBlipTextSelfAttention) for m in base.model.modules())
    return base, BlipForQuestionAnswering.from_pretrained(VQA_DEMO).eval()


def test_vqa_answers_are_the_stock_ones_and_ignore_question_padding(vqa_pair):
    base, stock = vqa_pair
    size = stock.config.vision_config.image_size
    pixels = torch.randn(3, 3, size, size, generator=torch.Generator().manual_seed(1))
    questions = base.processor.tokenizer(["what color is it?", "is it damaged", "how many"], padding=True,
                                         return_tensors="pt", return_token_type_ids=False)
    assert not bool(questions["attention_mask"].all())  # lengths differ: padding is masked
    # the answer decoder on padded question states, as the VQA task runs it
    states = torch.randn(3, 7, stock.config.text_config.hidden_size, generator=torch.Generator().manual_seed(2))
    answer = torch.tensor([[stock.config.text_config.bos_token_id, 7, 9]] * 3)
    lengths = [7, 5, 3]
    mask = torch.tensor([[1] * n + [0] * (7 - n) for n in lengths])
    with torch.inference_mode():
        # generate hands the decoder an all-ones mask: the same answers as stock
        expected = stock.generate(pixel_values=pixels, **questions, max_new_tokens=6)
        got = base.model.generate(pixel_values=pixels, **questions, max_new_tokens=6)
        batched = base.model.text_decoder(input_ids=answer, encoder_hidden_states=states,
                                          encoder_attention_mask=mask).logits
        alone = [base.model.text_decoder(input_ids=answer[i:i + 1], encoder_hidden_states=states[i:i + 1, :n]).logits
                 for i, n in enumerate(lengths)]
        unmasked = stock.text_decoder(input_ids=answer, encoder_hidden_states=states,
                                      encoder_attention_mask=mask).logits
    assert torch.equal(got, expected)
    # a padded question is answered as if it stood alone, unpadded ...
    for i in range(3):
        assert torch.allclose(batched[i], alone[i][0], atol=1e-5)
    # ... where the stock layer reads the padding (the mask reaches it under a name it ignores)
    assert torch.allclose(batched[0], unmasked[0], atol=1e-5)
    assert not torch.allclose(batched[2], unmasked[2], atol=1e-3)


def test_the_caption_task_loads_fused_layers_with_the_stock_state_dict():
    base = CaptionTask().load_base("demo")
    kinds = {type(m) for m in base.model.modules()}
    assert {FusedBlipAttention, FusedBlipTextSelfAttention} <= kinds
    stock = BlipForConditionalGeneration.from_pretrained(CAPTION_DEMO)
    assert list(base.model.state_dict()) == list(stock.state_dict())
    assert fuse_attention(base.model) == 0  # already fused: nothing changes


def kept_bytes(model, batch):
    """Bytes of the distinct storages autograd keeps for the backward pass."""
    storages = {}

    def pack(tensor):
        storages[tensor.untyped_storage().data_ptr()] = tensor.untyped_storage().nbytes()
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        model(**batch).loss.backward()
    return sum(storages.values())


def test_the_attention_matrices_are_no_longer_kept(caption_pair):
    stock, fused = caption_pair
    batch = caption_batch(stock, batch=4)
    vision = stock.config.vision_config
    tokens = (vision.image_size // vision.patch_size) ** 2 + 1
    # One fp32 probability matrix per vision layer; the text side's are small.
    matrices = vision.num_hidden_layers * 4 * vision.num_attention_heads * tokens * tokens * 4
    saved = kept_bytes(stock, batch) - kept_bytes(fused, batch)
    assert saved >= matrices, (saved, matrices)


def test_a_fully_masked_row_in_bf16_is_uniform_as_in_eager_attention():
    """An fp32 mask's minimum overflows to -inf in bf16, and SDPA answers a
    row of -inf with zeros or NaN (by kernel); clamped, the row is uniform,
    as eager attention gives it."""
    from lorakit_blip.attention import _additive_mask

    generator = torch.Generator().manual_seed(0)
    query, key, value = (torch.randn(1, 2, 3, 8, generator=generator).bfloat16() for _ in range(3))
    mask = torch.full((1, 1, 1, 3), torch.finfo(torch.float32).min)  # every key masked: an all-padding sequence
    attend = torch.nn.functional.scaled_dot_product_attention
    eager = torch.softmax((query.float() @ key.float().transpose(-1, -2)) * 8 ** -0.5 + mask, -1) @ value.float()
    assert torch.allclose(eager, value.float().mean(-2, keepdim=True).expand_as(eager))
    cast_only = attend(query, key, value, attn_mask=mask.bfloat16()).float()
    assert not torch.allclose(cast_only, eager, atol=0.1)  # the plain cast loses the row
    fused = attend(query, key, value, attn_mask=_additive_mask(mask, query)).float()
    assert torch.allclose(fused, eager, atol=2e-2)
