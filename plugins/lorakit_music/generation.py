"""Generating music from text prompts, seeded, and the merge probe.

Works on the plain model, the model with LoRA layers inside (a ``PeftModel``)
and the merged model alike: generation runs the transformers model whose
linear layers are whatever is in place.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

from lorakit.api import eval_mode, inner_model, seeded

#: Fixed inputs of the merge probe: no user data involved.
PROBE_PROMPT = "a probe melody"
PROBE_FRAMES = 12


@dataclass(frozen=True)
class Sampling:
    """How to sample codes: MusicGen's defaults are top-k 250 with
    classifier-free guidance 3."""

    seconds: float = 8.0
    guidance_scale: float = 3.0
    temperature: float = 1.0
    top_k: int = 250
    seed: int = 0


def generate(model: Any, processor: Any, prompts: Sequence[str], sampling: Sampling) -> tuple[Any, int]:
    """Audio ``(len(prompts), channels, samples)`` as numpy float32, and its rate."""
    import torch

    musicgen = inner_model(model)
    rate = int(musicgen.config.audio_encoder.sampling_rate)
    frames = max(1, round(sampling.seconds * musicgen.config.audio_encoder.frame_rate))
    # The delay pattern spends one step per extra codebook before the last
    # codebook's first code: ask for that many more steps.
    delay = musicgen.decoder.num_codebooks // musicgen.config.decoder.audio_channels - 1
    device = next(musicgen.parameters()).device
    inputs = processor(text=list(prompts), padding=True, return_tensors="pt").to(device)
    with seeded(sampling.seed, device), eval_mode(musicgen), torch.inference_mode():
        audio = musicgen.generate(**inputs, max_new_tokens=frames + delay, do_sample=True, guidance_scale=sampling.guidance_scale,
                                  temperature=sampling.temperature, top_k=sampling.top_k or None)
    return audio.float().cpu().numpy(), rate


def probe_logits(model: Any, processor: Any) -> Any:
    """Decoder logits for a fixed prompt and a fixed code sequence."""
    import torch

    musicgen = inner_model(model)
    decoder = musicgen.decoder
    k, size = decoder.num_codebooks, decoder.config.vocab_size
    codes = (torch.arange(k * PROBE_FRAMES).reshape(k, PROBE_FRAMES) * 7) % size
    from lorakit_music.codes import delay_labels

    labels = delay_labels(decoder, codes)[None]
    device = next(musicgen.parameters()).device
    text = processor.tokenizer([PROBE_PROMPT], return_tensors="pt").to(device)
    with eval_mode(musicgen), torch.inference_mode():
        return musicgen(**text, labels=labels.to(device)).logits.float().cpu()
