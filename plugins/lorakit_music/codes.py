"""Codec codes: encoding audio windows, caching them, and delay-pattern labels.

MusicGen learns to predict the codes EnCodec gives a clip. Encoding is the
costly part of reading data, and the codes of a clip never change while the
clip, the codec and the windowing stay the same, so they are computed once
and cached on disk under a key of all three.

MusicGen predicts its K codebooks with a delay: codebook k at step t is the
code of frame t - k. The model applies that pattern to its generation but not
to training labels, so labels are built here, with the decoder's own
``build_delay_pattern_mask``.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path
from typing import Any

#: Codes are stored as int32 (codebooks have at most a few thousand entries).
CODES_KEY = "codes"


def encode_windows(codec: Any, windows: Any, decoder_codebooks: int, batch_size: int = 8) -> Any:
    """Codes ``(N, K, T)`` of mono windows ``(N, samples)`` (float32 numpy).

    Stereo decoders (2 x K/2 codebooks, left and right interleaved) receive
    the mono codes on both channels, as MusicGen itself does with mono input.
    """
    import torch

    device = next(codec.parameters()).device
    parts = []
    with torch.inference_mode():
        for start in range(0, len(windows), batch_size):
            batch = torch.from_numpy(windows[start : start + batch_size]).to(device)[:, None, :]
            parts.append(codec.encode(batch).audio_codes[0].to("cpu", torch.int64))
    codes = torch.cat(parts)
    if codes.shape[1] * 2 == decoder_codebooks:
        codes = codes.repeat_interleave(2, dim=1)
    if codes.shape[1] != decoder_codebooks:
        raise ValueError(f"the codec gives {codes.shape[1]} codebooks but the decoder predicts {decoder_codebooks}")
    return codes


def delay_labels(decoder: Any, codes: Any) -> Any:
    """Labels ``(T + D - 1, K)`` of one window's codes ``(K, T)``, where D is
    the number of codebooks per channel: codebook k of a channel holds frames
    0..T-1 at steps k..k+T-1 and the pad id everywhere else (the model turns
    pad labels into -100, so they cost nothing). Stereo decoders interleave
    left and right codebooks, both delayed alike."""
    import torch

    pad = decoder.config.pad_token_id
    k, t = codes.shape
    delays = k // decoder.config.audio_channels
    # A leading pad column plays the start token, as in generation; the
    # pattern then holds every step, and the start column is dropped.
    with_start = torch.cat([torch.full((k, 1), pad, dtype=codes.dtype), codes], dim=1)
    _, pattern = decoder.build_delay_pattern_mask(with_start, pad_token_id=pad, max_length=t + delays)
    labels = pattern.reshape(k, t + delays)[:, 1:]
    if (labels < 0).any():
        raise RuntimeError("the delay pattern left steps unfilled; the window is shorter than the codebook delay")
    return labels.t().contiguous()


def codec_key(codec: Any) -> str:
    """A fingerprint of the codec's weights and settings."""
    from lorakit.api import fingerprint

    return fingerprint(codec)


class CodeCache:
    """Codes on disk, one safetensors file per (file content, codec, settings) key."""

    def __init__(self, folder: Path):
        self.folder = Path(folder)

    def key(self, path: Path, codec: str, settings: str) -> str:
        """The file's content (not its name), the codec and the settings."""
        from lorakit.api import file_fingerprint

        return hashlib.sha256(f"{file_fingerprint(path)}|{codec}|{settings}".encode()).hexdigest()[:40]

    def _path(self, key: str) -> Path:
        return self.folder / key[:2] / f"{key}.safetensors"

    def get(self, key: str) -> Any | None:
        """The cached codes, or None (also for an unreadable cache file, which is re-made)."""
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        path = self._path(key)
        if not path.is_file():
            return None
        try:
            return load_file(str(path))[CODES_KEY].long()
        except (SafetensorError, KeyError, OSError):
            return None

    def put(self, key: str, codes: Any) -> None:
        """Store codes through a temporary file and a rename (never a torn file)."""
        import torch
        from safetensors.torch import save_file

        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
        os.close(fd)
        try:
            save_file({CODES_KEY: codes.to(torch.int32).contiguous()}, tmp)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise


def default_cache_folder() -> Path:
    """``$LORAKIT_CACHE/music-codes``, by default ``~/.cache/lorakit/music-codes``."""
    from lorakit.api import cache_root

    return cache_root() / "music-codes"
