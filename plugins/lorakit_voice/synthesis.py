"""Speaking text with a coqui VITS, seeded.

Works on the plain model, the model with LoRA layers inside (a ``PeftModel``)
and the merged model alike: coqui's ``Vits.inference`` runs on whichever
modules are in place.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any, Iterator

from lorakit.api import eval_mode, inner_model, seeded


@dataclass(frozen=True)
class Voicing:
    """How to synthesise: the speaker slot (None for a single-speaker model),
    the prior's noise scale (0 is deterministic), the speed, and the seed."""

    speaker_id: int | None = None
    noise_scale: float = 0.667
    length_scale: float = 1.0
    seed: int = 0


#: Silence between the sentences of a text (seconds): a sentence pause.
SENTENCE_PAUSE_SECONDS = 0.2


def synthesize_sentences(model: Any, sentences: list[str], voicing: Voicing, spoken: Any = None) -> Any:
    """``sentences`` (``sentences.split_sentences``) spoken one by one, joined
    by ``SENTENCE_PAUSE_SECONDS`` of silence: memory and time of one pass stay
    those of one sentence, however long the text. ``spoken()`` is called
    after each sentence (a progress bar)."""
    import numpy as np

    rate = int(inner_model(model).config.audio.sample_rate)
    pause = np.zeros(round(SENTENCE_PAUSE_SECONDS * rate), dtype=np.float32)
    pieces: list[Any] = []
    for index, sentence in enumerate(sentences):
        if index:
            pieces.append(pause)
        pieces.append(synthesize(model, sentence, voicing))
        if spoken is not None:
            spoken()
    return np.concatenate(pieces) if pieces else np.zeros(0, dtype=np.float32)


def synthesize(model: Any, text: str, voicing: Voicing) -> Any:
    """``text`` spoken by ``model``: a 1-D float32 numpy array at the model's rate."""
    import torch

    vits = inner_model(model)  # the coqui Vits, LoRA layers in place
    device = next(vits.parameters()).device
    ids = torch.as_tensor(vits.tokenizer.text_to_ids(text), dtype=torch.long, device=device).unsqueeze(0)
    aux = {"x_lengths": torch.tensor([ids.shape[1]], device=device), "d_vectors": None, "language_ids": None,
           "speaker_ids": None if voicing.speaker_id is None else torch.tensor([voicing.speaker_id], device=device)}
    with _scales(vits, voicing), eval_mode(vits), seeded(voicing.seed, device):
        wave = vits.inference(ids, aux_input=aux)["model_outputs"]
    return wave[0, 0].float().cpu().numpy()


def probe_output(model: Any, text: str, speaker_id: int | None) -> Any:
    """A deterministic tensor for merge checks: the predicted log-durations of
    ``text`` and the waveform decoded with *fixed* durations and no noise
    (fixed durations keep the length identical when a merge moves a duration
    by a rounding error across an integer)."""
    import torch

    vits = inner_model(model)  # the coqui Vits, LoRA layers in place
    device = next(vits.parameters()).device
    ids = torch.as_tensor(vits.tokenizer.text_to_ids(text), dtype=torch.long, device=device).unsqueeze(0)
    sid = None if speaker_id is None else torch.tensor([speaker_id], device=device)
    aux = {"x_lengths": torch.tensor([ids.shape[1]], device=device), "speaker_ids": sid, "d_vectors": None,
           "language_ids": None, "durations": torch.full((1, ids.shape[1]), 3.0, device=device)}
    with _scales(vits, Voicing(speaker_id, noise_scale=0.0)), eval_mode(vits), torch.inference_mode():
        wave = vits.inference(ids, aux_input=aux)["model_outputs"].flatten()
        hidden, _, _, mask = vits.text_encoder(ids, aux["x_lengths"])
        g = vits.emb_g(sid).unsqueeze(-1) if sid is not None and hasattr(vits, "emb_g") else None
        if vits.args.use_sdp:
            parts = [wave]  # the stochastic predictor samples noise: no fixed output to compare
        else:
            logw = vits.duration_predictor(hidden, mask, g=g if vits.args.condition_dp_on_speaker else None)
            parts = [wave, logw.flatten()]
    return torch.cat(parts).float().cpu()


@contextlib.contextmanager
def _scales(vits: Any, voicing: Voicing) -> Iterator[None]:
    saved = vits.inference_noise_scale, vits.length_scale
    vits.inference_noise_scale, vits.length_scale = voicing.noise_scale, voicing.length_scale
    try:
        yield
    finally:
        vits.inference_noise_scale, vits.length_scale = saved

