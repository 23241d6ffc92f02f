"""What a BLIP generation gave back: the text, and the token counts and stop
reason a server reports (OpenAI's ``usage`` and ``finish_reason``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

from lorakit_blip.helpers import image_size


@dataclass(frozen=True)
class Generated:
    text: str
    #: The image's positions and every text token the model read before answering.
    prompt_tokens: int
    #: Tokens generated, the end token included when the model gave it.
    completion_tokens: int
    #: False when the length cap cut the text before the model ended it.
    ended: bool

    @property
    def finish_reason(self) -> str:
        return "stop" if self.ended else "length"

    def usage_fields(self) -> dict[str, Any]:
        """The record fields a prediction carries: OpenAI's names and meanings."""
        return {"usage": {"prompt_tokens": self.prompt_tokens, "completion_tokens": self.completion_tokens,
                          "total_tokens": self.prompt_tokens + self.completion_tokens},
                "finish_reason": self.finish_reason}


def image_positions(base: Any) -> int:
    """Positions BLIP's vision tower gives an image: one per patch, and its
    class token (577 for BLIP-base at 384 x 384)."""
    height, width = image_size(base)
    patch = base.model.config.vision_config.patch_size
    return (height // patch) * (width // patch) + 1


def read_generated(base: Any, generated_ids: Any, prompt_tokens: Sequence[int]) -> list[Generated]:
    """Each row of ``generated_ids`` (the tokens after the prompt, padded
    after the end token) as text, cut at the end token BLIP's generation
    stops at (``[SEP]``); a row without one ran to the length cap."""
    end = base.model.config.text_config.sep_token_id
    decode = base.processor.tokenizer.decode
    results = []
    for row, prompt in zip(generated_ids.tolist(), prompt_tokens):
        ended = end in row
        kept = row[: row.index(end) + 1] if ended else row
        text = " ".join(decode(kept, skip_special_tokens=True).split())
        results.append(Generated(text, prompt, len(kept), ended))
    return results
