"""The answer decoder's output head: does an adapter need to train it?

LoRA changes the decoder's hidden states, not the head that turns them into
word scores, so it can only make the decoder say words the head already
scores as answers. A token the head was never trained to emit keeps a row
near its random start and cannot be reached (FACTS: "a new answer word
cannot be learned by LoRA alone").

Such tokens are recognisable by the head's output bias: softmax training
lowers the bias of every token that is not the target by the same small
amounts, so all the tokens a head never emits end up together at the bottom,
at the vocabulary's median, while the tokens it says sit clearly above.
Measured on the demo base (139 tokens): the words it answers have biases from
-0.035 to 0.052, the median is -0.112, and every character piece the damage
words need (c, ##r, ##a, ##k...) lies between -0.118 and -0.111.

An answer token counts as *unsaid* when its bias lies in the lower quarter of
the span from the median to the highest bias. A head without a bias (all
equal) makes every token unsaid, so the head is then trained: the safe side.
"""

from __future__ import annotations

from typing import Any, Sequence

#: Where between the median bias (0) and the highest one (1) "said" begins.
SAID_FRACTION = 0.25


def unsaid_answer_tokens(base: Any, examples: Sequence[Any]) -> list[str]:
    """Tokens of the training answers that the base's head does not emit."""
    tokenizer = base.processor.tokenizer
    bias = head_bias(base.model)
    if bias is None:
        return []
    threshold = said_threshold(bias)
    ids = {i for e in examples for a in e.answers for i in tokenizer(a, add_special_tokens=False)["input_ids"]}
    return sorted(tokenizer.convert_ids_to_tokens(i) for i in ids if float(bias[i]) < threshold)


def said_threshold(bias: Any) -> float:
    """The bias below which a token counts as never said."""
    median, top = float(bias.median()), float(bias.max())
    return median + SAID_FRACTION * (top - median) + 1e-12


def head_bias(model: Any) -> Any:
    """The output bias of the answer head, or None when it has none."""
    predictions = model.text_decoder.cls.predictions
    bias = getattr(predictions, "bias", None)
    return None if bias is None else bias.detach().float().cpu()


def untie_trained_head(model: Any) -> None:
    """Untie the head from the word embeddings when their weights differ.

    A ``modules_to_save`` copy of the head, merged back, holds its own
    trained weight; saved with ``tie_word_embeddings`` on, Hugging Face would
    keep only the embeddings and reload the head without what it learned.
    Untied, it ties neither the weight nor the bias (``decoder.bias`` is
    ``predictions.bias``), and a shared tensor is saved under one name only,
    so the decoder gets its own copy of the bias to be saved and reloaded.
    """
    import torch

    predictions = model.text_decoder.cls.predictions
    head, embeddings = predictions.decoder.weight, model.text_decoder.bert.embeddings.word_embeddings.weight
    if head is embeddings or torch.equal(head, embeddings):
        return
    for config in (model.config, model.config.text_config):
        config.tie_word_embeddings = False
    if predictions.decoder.bias is predictions.bias:
        predictions.decoder.bias = torch.nn.Parameter(predictions.bias.detach().clone())
