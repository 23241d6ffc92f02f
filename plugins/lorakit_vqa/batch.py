"""Tensors for BLIP VQA: images, questions and answers as the model takes them.

BLIP VQA's decoder reads the answer it is trained on (teacher forcing), and
``BlipForQuestionAnswering`` uses ``labels`` as the decoder's input when no
``decoder_input_ids`` are given, so a -100 in ``labels`` would reach the
embedding table and raise an IndexError. The answer is therefore passed
twice: ``decoder_input_ids`` (padding id on padding, never -100) with its
``decoder_attention_mask``, and ``labels`` with -100 on padding only.

``generate()`` starts the answer from ``text_config.bos_token_id`` and stops
at ``sep_token_id``; the tokenizer writes [CLS] first, so training swaps it
for that bos, or training and generation would disagree.

Images arrive decoded (``lorakit.api.load_images`` for files, the renderer's
images in ``make_demo``).
"""

from __future__ import annotations

from typing import Any, Sequence

from lorakit_blip import pixel_values


def encode_questions(processor: Any, questions: Sequence[str], max_length: int) -> dict[str, Any]:
    """Question ids ([CLS] question [SEP], padded) and their attention mask."""
    tokens = processor.tokenizer(list(questions), padding="longest", truncation=True, max_length=max_length,
                                 return_tensors="pt")
    return {"input_ids": tokens["input_ids"], "attention_mask": tokens["attention_mask"]}


def encode_answers(processor: Any, answers: Sequence[str], bos_id: int, max_length: int) -> dict[str, Any]:
    """Decoder inputs (bos answer [SEP], padded) and labels (-100 on padding)."""
    tokens = processor.tokenizer(list(answers), padding="longest", truncation=True, max_length=max_length,
                                 return_tensors="pt")
    decoder_input_ids = tokens["input_ids"].clone()
    decoder_input_ids[:, 0] = bos_id
    mask = tokens["attention_mask"]
    # The model shifts labels itself (position 0, the bos, is never a target).
    labels = decoder_input_ids.masked_fill(mask == 0, -100)
    return {"decoder_input_ids": decoder_input_ids, "decoder_attention_mask": mask, "labels": labels}


def encode_batch(processor: Any, images: Sequence[Any], questions: Sequence[str], answers: Sequence[str],
                 bos_id: int, question_length: int = 40, answer_length: int = 40) -> dict[str, Any]:
    """A training batch: pixel values, question ids, decoder inputs and labels."""
    return {
        "pixel_values": pixel_values(processor, images),
        **encode_questions(processor, questions, question_length),
        **encode_answers(processor, answers, bos_id, answer_length),
    }
