"""The text decoder's output head: does an adapter need to train it?

LoRA changes the decoder's hidden states, not the head that turns them into
word scores, so it can only make the decoder say words the head already
scores. A token the head was never trained to emit keeps a row near its
random start and cannot be reached (FACTS: "a new answer word cannot be
learned by LoRA alone"): a VQA answer or a caption with a word the base
never says (a product name, "dots" for the demo) is learned only with the
head trained fully and saved with the adapter.

Such tokens are recognisable by the head's output bias: softmax training
lowers the bias of every token that is not the target by the same small
amounts, so all the tokens a head never emits end up together at the bottom,
at the vocabulary's median, while the tokens it says sit clearly above.
Measured on the VQA demo base (139 tokens): the words it answers have biases
from -0.035 to 0.052, the median is -0.112, and every character piece the
damage words need (c, ##r, ##a, ##k...) lies between -0.118 and -0.111. On
the caption demo: its words 0.027 to 0.056, the median -0.055, the pieces of
"dots", "four", "row" -0.058 to -0.054.

A token counts as *unsaid* when its bias lies in the lower quarter of the
span from the median to the highest bias. A head without a bias (all equal,
as in a model built from its config) makes every token unsaid, so the head
is then trained: the safe side.

Both BLIP tasks decide with ``head_to_train`` from their ``train_head``
option: ``auto`` (when the training texts need an unsaid token), ``always``
or ``never``.
"""

from __future__ import annotations

from typing import Any, Sequence

from lorakit.api import ConfigError

#: The text decoder's output head, the module trained fully when it must be.
HEAD = "text_decoder.cls.predictions"
#: Values of the tasks' ``train_head`` option.
TRAIN_HEAD_CHOICES = ("auto", "always", "never")
#: Where between the median bias (0) and the highest one (1) "said" begins.
SAID_FRACTION = 0.25


def checked_choice(choice: str) -> str:
    """``choice`` as a ``train_head`` option value, or the error naming the values."""
    if choice not in TRAIN_HEAD_CHOICES:
        raise ConfigError(f"options.train_head must be one of {', '.join(TRAIN_HEAD_CHOICES)}, got {choice!r}")
    return choice


def head_to_train(choice: str, base: Any, texts: Sequence[str]) -> list[str]:
    """``[HEAD]`` when ``choice`` (a ``train_head`` value) asks for it, or
    (``auto``) when ``texts``, the training targets, need a token the base's
    head does not emit; else nothing."""
    if choice == "always":
        return [HEAD]
    if choice == "never":
        return []
    return [HEAD] if unsaid_tokens(base, texts) else []


def unsaid_tokens(base: Any, texts: Sequence[str]) -> list[str]:
    """Tokens of ``texts`` that the base's head does not emit."""
    tokenizer = base.processor.tokenizer
    bias = head_bias(base.model)
    if bias is None:
        return []
    threshold = said_threshold(bias)
    ids = {i for text in texts for i in tokenizer(text, add_special_tokens=False)["input_ids"]}
    return sorted(tokenizer.convert_ids_to_tokens(i) for i in ids if float(bias[i]) < threshold)


def said_threshold(bias: Any) -> float:
    """The bias below which a token counts as never said."""
    median, top = float(bias.median()), float(bias.max())
    return median + SAID_FRACTION * (top - median) + 1e-12


def head_bias(model: Any) -> Any:
    """The output bias of the decoder's head, or None when it has none."""
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


def save_merged(base: Any, model: Any, path: Any) -> None:
    """A merged BLIP saved as Hugging Face does (model and processor,
    safetensors), its head untied first (``untie_trained_head``)."""
    untie_trained_head(model)
    model.save_pretrained(path, safe_serialization=True)
    base.processor.save_pretrained(path)
