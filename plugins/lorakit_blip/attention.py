"""Fused attention for BLIP: ``torch.nn.functional.scaled_dot_product_attention``
in place of the matmul-softmax-matmul that transformers' BLIP computes.

BLIP in transformers has no SDPA implementation (``attn_implementation`` is
eager only), so every attention layer keeps its full probability matrix
(batch x heads x tokens x tokens) for the backward pass. For the vision tower
at 384 px that is 577 x 577 per head: 64 MB a layer at batch 4, a quarter of
BLIP-base's training activations, and on a GPU the eager path also forgoes
the flash and memory-efficient kernels. The fused layers compute the same
function (the same weights, names, masks, cache and scale; tested against
eager in training and generation) and keep only the inputs, the output and
the softmax statistics.

One deliberate difference: cross-attention applies the encoder's mask.
transformers' BLIP text layer (5.23 to 5.25) hands that mask to its
cross-attention under a name the stock attention ignores, so VQA's answer
decoder attends to the padding of shorter questions, and a question's answer
depends on the others in its batch. The original BLIP masks the question's
padding in training and ranking, and so does the fused layer. Where the keys
are never padded (image patches: captioning, the question encoder) nothing
changes.

The swap changes each attention module's class, not its parameters, so
state-dict names, LoRA targets, saved adapters and merged exports are those
of the stock model. Attention maps are not returned (``None``); nothing in
lorakit asks for them.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from transformers.cache_utils import EncoderDecoderCache
from transformers.models.blip.modeling_blip import BlipAttention
from transformers.models.blip.modeling_blip_text import BlipTextSelfAttention


def _dropout(module: Any) -> float:
    return module.dropout.p if module.training else 0.0


def _additive_mask(mask: torch.Tensor | None, query: torch.Tensor) -> torch.Tensor | None:
    """BLIP's additive mask (0 or the dtype's minimum) in the query's dtype,
    as the fused kernels want it; clamped so that the minimum of a wider
    dtype stays finite in a narrower one (SDPA answers a row of -inf with
    zeros or NaN, by kernel, where eager attention gives a uniform row)."""
    if mask is None:
        return None
    mask = mask.to(query.device)
    if mask.dtype != query.dtype and mask.dtype != torch.bool:  # a boolean mask SDPA takes as it is
        mask = mask.clamp(min=torch.finfo(query.dtype).min).to(query.dtype)
    return mask


class FusedBlipAttention(BlipAttention):
    """The vision tower's self-attention (``qkv`` and ``projection`` kept)."""

    def forward(self, hidden_states: torch.Tensor, **kwargs: Any) -> tuple[torch.Tensor, None]:
        batch, tokens, width = hidden_states.shape
        qkv = self.qkv(hidden_states).reshape(batch, tokens, 3, self.num_heads, self.head_dim).permute(2, 0, 3, 1, 4)
        context = F.scaled_dot_product_attention(qkv[0], qkv[1], qkv[2], dropout_p=_dropout(self), scale=self.scale)
        return self.projection(context.transpose(1, 2).reshape(batch, tokens, width)), None


class FusedBlipTextSelfAttention(BlipTextSelfAttention):
    """The text model's self- and cross-attention, with the generation cache
    handled as the stock layer does (cross-attention keys and values computed
    once, then reused)."""

    def forward(self, hidden_states: torch.Tensor, attention_mask: torch.Tensor | None = None,
                encoder_hidden_states: torch.Tensor | None = None,
                encoder_attention_mask: torch.Tensor | None = None, cache: Any = None,
                **kwargs: Any) -> tuple[torch.Tensor, None]:
        if cache is None:
            cache = kwargs.pop("past_key_values", None)
        leading = hidden_states.shape[:-1]
        query = self.query(hidden_states).view(*leading, -1, self.attention_head_size).transpose(1, 2)

        cross = encoder_hidden_states is not None
        # transformers' BlipTextLayer passes the encoder's mask to its
        # cross-attention as attention_mask (see the module's note).
        mask = encoder_attention_mask if cross and encoder_attention_mask is not None else attention_mask
        layer_cache, reuse = cache, False
        if isinstance(cache, EncoderDecoderCache):
            layer_cache = cache.cross_attention_cache if cross else cache.self_attention_cache
            reuse = cross and bool(cache.is_updated.get(self.layer_idx))

        if reuse:
            key, value = layer_cache.layers[self.layer_idx].keys, layer_cache.layers[self.layer_idx].values
        else:
            source = encoder_hidden_states if cross else hidden_states
            split = (*source.shape[:-1], -1, self.attention_head_size)
            key = self.key(source).view(split).transpose(1, 2)
            value = self.value(source).view(split).transpose(1, 2)
            if cache is not None:
                key, value = layer_cache.update(key, value, self.layer_idx)
                if cross and isinstance(cache, EncoderDecoderCache):
                    cache.is_updated[self.layer_idx] = True

        context = F.scaled_dot_product_attention(query, key, value, attn_mask=_additive_mask(mask, query),
                                                 dropout_p=_dropout(self),
                                                 scale=self.attention_head_size ** -0.5)
        return context.transpose(1, 2).reshape(*leading, self.all_head_size), None


#: Stock class -> fused class. Exact classes only: a subclass may compute
#: something else and is left as it is.
FUSED = {BlipAttention: FusedBlipAttention, BlipTextSelfAttention: FusedBlipTextSelfAttention}


def _swap(model: Any, classes: dict) -> int:
    """Give each module of exactly a class in ``classes`` the class it maps to."""
    changed = 0
    for module in model.modules():
        swapped = classes.get(type(module))
        if swapped is not None:
            module.__class__ = swapped
            changed += 1
    return changed


def fuse_attention(model: Any) -> int:
    """Give every stock BLIP attention layer of ``model`` the fused forward, in
    place; returns how many layers were changed. Layers already fused, or of
    another class, are left alone, so calling it twice changes nothing."""
    return _swap(model, FUSED)


def unfuse_attention(model: Any) -> int:
    """Give fused layers back their stock eager classes (to compare the two)."""
    return _swap(model, {fused: stock for stock, fused in FUSED.items()})
