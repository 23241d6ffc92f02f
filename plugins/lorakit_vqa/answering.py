"""Answering questions with a BLIP VQA model, through its three submodules.

``BlipForQuestionAnswering.generate`` hands the answer decoder an all-ones
mask over the question's encoding; running the vision tower, the question
encoder and the decoder here passes the question's own mask, as training
does, so a shorter question's padding is ignored and its answer does not
depend on the rest of its batch. (The mask takes effect through lorakit's
fused attention: transformers' own BLIP cross-attention ignores it, see
``lorakit_blip.attention``.) A ``PeftModel`` passes these submodule names
through to its base.
"""

from __future__ import annotations

from typing import Any


def question_states(model: Any, pixel_values: Any, input_ids: Any, attention_mask: Any) -> Any:
    """The question encoder's output, which the answer decoder attends to."""
    import torch

    image_embeds = model.vision_model(pixel_values=pixel_values)[0]
    image_mask = torch.ones(image_embeds.shape[:-1], dtype=torch.long, device=image_embeds.device)
    return model.text_encoder(input_ids=input_ids, attention_mask=attention_mask, encoder_hidden_states=image_embeds,
                              encoder_attention_mask=image_mask)[0]


def generate_answers(model: Any, batch: dict[str, Any], max_new_tokens: int, num_beams: int) -> Any:
    """Answer token ids (bos first) for a batch of pixel values and question ids."""
    import torch

    text = model.config.text_config
    states = question_states(model, batch["pixel_values"], batch["input_ids"], batch["attention_mask"])
    bos = torch.full((states.shape[0], 1), text.bos_token_id, dtype=torch.long, device=states.device)
    return model.text_decoder.generate(
        input_ids=bos, eos_token_id=text.sep_token_id, pad_token_id=text.pad_token_id,
        encoder_hidden_states=states, encoder_attention_mask=batch["attention_mask"],
        max_new_tokens=max_new_tokens, num_beams=num_beams, do_sample=False,
    )


def answer_logits(model: Any, batch: dict[str, Any]) -> Any:
    """The decoder's logits over the vocabulary at every answer position
    (teacher-forced on ``decoder_input_ids``)."""
    states = question_states(model, batch["pixel_values"], batch["input_ids"], batch["attention_mask"])
    return model.text_decoder(input_ids=batch["decoder_input_ids"], attention_mask=batch.get("decoder_attention_mask"),
                              encoder_hidden_states=states, encoder_attention_mask=batch["attention_mask"]).logits
