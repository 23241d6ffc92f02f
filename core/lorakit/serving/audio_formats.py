"""A clip as the bytes of a response format, through libsndfile (soundfile).

libsndfile 1.1+ writes MP3 (LAME) and Opus in Ogg itself, so no encoder of
our own and no ffmpeg process. ``pcm`` is what OpenAI sends: raw signed
16-bit little-endian mono at 24 kHz, which clients assume without a header.
Opus only takes 8/12/16/24/48 kHz, so clips are resampled (soxr) for it.
"""

from __future__ import annotations

import io
from typing import Any

#: Response format -> (media type, soundfile format, subtype, fixed rate or None).
FORMATS: dict[str, tuple[str, str | None, str | None, int | None]] = {
    "wav": ("audio/wav", "WAV", "PCM_16", None),
    "flac": ("audio/flac", "FLAC", "PCM_16", None),
    "mp3": ("audio/mpeg", "MP3", "MPEG_LAYER_III", None),
    "opus": ("audio/ogg", "OGG", "OPUS", 48000),
    "pcm": ("audio/pcm", None, None, 24000),
}
#: Sample rates MP3 (MPEG-1/2/2.5 layer III) can carry.
_MP3_RATES = (8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000)


def encode(audio: Any, sample_rate: int, response_format: str) -> tuple[bytes, str]:
    """``(bytes, media type)`` of a mono float clip in ``response_format``."""
    import numpy as np
    import soundfile as sf

    media_type, container, subtype, rate = FORMATS[response_format]
    clip = np.clip(np.asarray(audio, dtype=np.float32).reshape(-1), -1.0, 1.0)
    if response_format == "mp3" and sample_rate not in _MP3_RATES:
        rate = min(_MP3_RATES, key=lambda r: abs(r - sample_rate))
    if rate is not None and rate != sample_rate:
        import soxr

        clip, sample_rate = soxr.resample(clip, sample_rate, rate).astype(np.float32), rate
    if container is None:
        return (np.round(clip * 32767).astype("<i2")).tobytes(), media_type
    buffer = io.BytesIO()
    sf.write(buffer, clip, sample_rate, format=container, subtype=subtype)
    return buffer.getvalue(), media_type
