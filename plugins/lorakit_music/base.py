"""Loading a MusicGen base: the demo, a local folder, or a hub id, checked first.

A MusicGen checkpoint holds three models: the T5 text encoder, the EnCodec
audio codec and the decoder that predicts codec codes. The generation config
must name the decoder's special ids, or generation and the label shift
cannot start; checkpoints saved without them get them from the decoder config.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Iterator

from lorakit.api import Base, BaseKind, BaseModelError, load_pretrained

KIND = BaseKind(
    label="MusicGen model", model_type="musicgen", architecture="MusicgenForConditionalGeneration",
    demo=Path(__file__).parent / "demo_base", rebuild="python -m lorakit_music.make_demo --out plugins/lorakit_music/demo_base",
    example="facebook/musicgen-small", hint="not musicgen-melody (another class, conditioned on a melody)",
)


def load_musicgen(name: str) -> Base:
    """Load ``name`` as ``MusicgenForConditionalGeneration`` with its ``MusicgenProcessor``."""
    from transformers import MusicgenForConditionalGeneration, MusicgenProcessor

    with _pad_id_warnings_silenced():
        model, processor, _ = load_pretrained(name, KIND, MusicgenForConditionalGeneration, MusicgenProcessor)
    complete_generation_config(model)
    model.eval()
    return Base(model=model, processor=processor, name=name)


@contextlib.contextmanager
def _pad_id_warnings_silenced() -> Iterator[None]:
    """MusicGen's pad/start id is the codebook size by design (its embedding
    has one row more than its heads); transformers' generic config check
    warns about it on every load, facebook/musicgen-small included."""
    import logging

    def keep(record: logging.LogRecord) -> bool:
        message = record.getMessage()
        return not ("_token_id must be `None` or an integer within the vocabulary" in message)

    logger = logging.getLogger("transformers.configuration_utils")
    logger.addFilter(keep)
    try:
        yield
    finally:
        logger.removeFilter(keep)


def complete_generation_config(model) -> None:
    """Fill the decoder's special ids and a length into the generation config
    where a checkpoint left them out."""
    decoder = model.config.decoder
    generation = model.generation_config
    pad = decoder.pad_token_id
    if pad is None:
        raise BaseModelError("this MusicGen checkpoint's decoder config has no pad_token_id; it cannot be trained")
    for key in ("pad_token_id", "decoder_start_token_id", "bos_token_id"):
        if getattr(generation, key, None) is None:
            setattr(generation, key, getattr(decoder, key, None) if getattr(decoder, key, None) is not None else pad)
    if not generation.max_length or generation.max_length <= 20:
        generation.max_length = decoder.max_position_embeddings


def frame_rate(model) -> int:
    """Codec frames per second (50 for MusicGen's 32 kHz EnCodec)."""
    return int(model.config.audio_encoder.frame_rate)


def sample_rate(model) -> int:
    return int(model.config.audio_encoder.sampling_rate)
