"""A clip as the bytes of a response format.

Whole clips (``encode``: music, and speech in wav or flac, whose headers
carry the length) go through libsndfile (soundfile), which writes MP3 (LAME)
and Opus in Ogg itself. Speech in mp3, opus, aac or pcm is sent as it is
spoken (``StreamEncoder``): one encoder for the whole answer, fed sentence by
sentence, through PyAV (FFmpeg's LAME, AAC and Opus encoders), so a player
starts on the first sentence. ``pcm`` is what OpenAI sends: raw signed
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
    "aac": ("audio/aac", None, None, None),
    "pcm": ("audio/pcm", None, None, 24000),
}
#: Formats sent as they are spoken; the others are sent whole.
STREAMED = ("mp3", "opus", "aac", "pcm")
#: Sample rates MP3 (MPEG-1/2/2.5 layer III) can carry.
_MP3_RATES = (8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000)
#: Sample rates an AAC (ADTS) stream can name.
_AAC_RATES = (7350, 8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000, 64000, 88200, 96000)
#: Streamed format -> (PyAV container, encoder, container options). An Ogg page
#: is cut every 20 ms rather than every second, so a sentence's last Opus
#: packets leave with it instead of waiting for the next sentence.
_STREAM_CODECS = {"mp3": ("mp3", "libmp3lame", {}), "aac": ("adts", "aac", {}),
                  "opus": ("ogg", "libopus", {"page_duration": "20000"})}


def encode(audio: Any, sample_rate: int, response_format: str) -> tuple[bytes, str]:
    """``(bytes, media type)`` of a mono float clip in ``response_format``."""
    import soundfile as sf

    media_type, container, subtype, _ = FORMATS[response_format]
    if container is None:  # pcm, or aac (PyAV's encoder only)
        encoder = StreamEncoder(response_format, sample_rate)
        return encoder.push(audio) + encoder.finish(), media_type
    rate = rate_for(response_format, sample_rate)
    buffer = io.BytesIO()
    sf.write(buffer, _resampled(audio, sample_rate, rate), rate, format=container, subtype=subtype)
    return buffer.getvalue(), media_type


class StreamEncoder:
    """One answer in ``response_format`` encoded piece by piece: ``push``
    each piece of audio as it is made and send what it returns at once;
    ``finish`` gives the rest (an encoder's last frames)."""

    def __init__(self, response_format: str, sample_rate: int):
        self.media_type = FORMATS[response_format][0]
        self.sample_rate = sample_rate
        self.rate = rate_for(response_format, sample_rate)
        self._out: list[bytes] = []
        self._container = self._stream = None
        if response_format != "pcm":
            import av

            container, codec, options = _STREAM_CODECS[response_format]
            self._container = av.open(self, "w", format=container, options=options)
            self._stream = self._container.add_stream(codec, rate=self.rate, layout="mono")

    def push(self, audio: Any) -> bytes:
        """The bytes ready after ``audio`` (mono float at ``sample_rate``)."""
        clip = _resampled(audio, self.sample_rate, self.rate)
        if self._container is None:
            import numpy as np

            return (np.round(clip * 32767).astype("<i2")).tobytes()
        if clip.size:
            import av

            frame = av.AudioFrame.from_ndarray(clip.reshape(1, -1), format="flt", layout="mono")
            frame.sample_rate = self.rate
            for packet in self._stream.encode(frame):
                self._container.mux(packet)
        return self._take()

    def finish(self) -> bytes:
        if self._container is None:
            return b""
        for packet in self._stream.encode(None):
            self._container.mux(packet)
        self._container.close()
        return self._take()

    def write(self, data: bytes) -> int:
        """Where the container writes (it is a file to PyAV, one that cannot seek)."""
        self._out.append(bytes(data))
        return len(data)

    def _take(self) -> bytes:
        data, self._out = b"".join(self._out), []
        return data


def rate_for(response_format: str, sample_rate: int) -> int:
    """The rate a format is sent at: its fixed one, or the nearest it can carry."""
    fixed = FORMATS[response_format][3]
    if fixed is not None:
        return fixed
    allowed = {"mp3": _MP3_RATES, "aac": _AAC_RATES}.get(response_format)
    return min(allowed, key=lambda r: abs(r - sample_rate)) if allowed else sample_rate


def _resampled(audio: Any, sample_rate: int, rate: int) -> Any:
    """``audio`` as mono float32 in [-1, 1] at ``rate``."""
    import numpy as np

    clip = np.clip(np.asarray(audio, dtype=np.float32).reshape(-1), -1.0, 1.0)
    if rate != sample_rate and clip.size:
        import soxr

        clip = soxr.resample(clip, sample_rate, rate).astype(np.float32)
    return clip
