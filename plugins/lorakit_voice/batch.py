"""Batches in the layout coqui's ``Vits.train_step`` reads.

coqui builds them in two stages (``VitsDataset.collate_fn``, then
``Vits.format_batch`` and ``format_batch_on_device``); here both run at once
on CPU, in the DataLoader, and the core moves the tensors to the device.
"""

from __future__ import annotations

from typing import Any, Sequence


def collate(model: Any, tokens: Sequence[Sequence[int]], audio: Sequence[Any], speaker_ids: Sequence[int] | None) -> dict[str, Any]:
    """Padded tokens and waveforms plus the spectrograms train_step needs.

    ``model`` is the coqui ``Vits`` (for its audio config and pad id);
    ``audio`` are 1-D float arrays at the model's sample rate.
    """
    import torch

    batch_size = len(tokens)
    token_lens = torch.tensor([len(t) for t in tokens], dtype=torch.long)
    wav_lens = torch.tensor([len(a) for a in audio], dtype=torch.long)
    pad_id = model.tokenizer.characters.pad_id
    padded_tokens = torch.full((batch_size, int(token_lens.max())), pad_id, dtype=torch.long)
    waveform = torch.zeros(batch_size, 1, int(wav_lens.max()))
    for row, (ids, clip) in enumerate(zip(tokens, audio)):
        padded_tokens[row, : len(ids)] = torch.as_tensor(ids, dtype=torch.long)
        waveform[row, 0, : len(clip)] = torch.as_tensor(clip, dtype=torch.float32)
    batch = {
        "tokens": padded_tokens,
        "token_lens": token_lens,
        "waveform": waveform,
        "waveform_rel_lens": wav_lens / wav_lens.max(),
        "speaker_ids": torch.as_tensor(speaker_ids, dtype=torch.long) if speaker_ids is not None else None,
        "d_vectors": None,
        "language_ids": None,
    }
    # Spectrograms, mels and their lengths, exactly as coqui computes them.
    return model.format_batch_on_device(batch)
