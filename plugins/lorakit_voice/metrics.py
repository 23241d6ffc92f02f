"""Speech metrics of the voice-clone task: speaker similarity, mel-cepstral
distortion and real-time factor.

* Speaker similarity is the cosine between resemblyzer d-vectors (a speaker
  encoder whose weights ship inside the ``resemblyzer`` package, so it works
  offline). On espeak-ng voices: the same voice on other sentences scores
  0.81-0.92, another voice 0.52-0.71.
* Mel-cepstral distortion (MCD, in dB) compares the spectral envelope of two
  utterances frame by frame after aligning them with dynamic time warping, so
  the two may differ in timing (synthesised vs recorded speech of one text).
  It ignores c0 (loudness). Lower is better; values from different feature
  settings are not comparable.
* Pitch gap: semitones between the median pitch (probabilistic YIN over
  voiced frames) of synthesised speech and of the real clip of the same
  text. It shows a clone that took a voice's timbre but not its register
  (a base that renders every voice at one pitch).
* Real-time factor: compute seconds per second of audio produced (< 1 is
  faster than real time).
"""

from __future__ import annotations

import functools
import math
from typing import Any, Sequence

#: resemblyzer's encoder works at 16 kHz.
ENCODER_RATE = 16000
MCD_COEFFICIENTS = 13
#: The pitches looked for (Hz): below a bass voice, above a high female or child voice.
PITCH_RANGE = (50.0, 600.0)
_MCD_SCALE = 10.0 / math.log(10.0) * math.sqrt(2.0)


def _resemblyzer() -> Any:
    """The resemblyzer module, imported without the setuptools warning its
    webrtcvad raises (it imports pkg_resources): not the user's to act on."""
    import warnings

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="pkg_resources is deprecated", category=UserWarning)
        import resemblyzer
    return resemblyzer


@functools.lru_cache(maxsize=1)
def _voice_encoder() -> Any:
    return _resemblyzer().VoiceEncoder("cpu", verbose=False)


def speaker_embedding(audio: Any, sample_rate: int) -> Any:
    """The unit-length resemblyzer d-vector of one utterance (1-D float array)."""
    import numpy as np

    wav = _resemblyzer().preprocess_wav(np.asarray(audio, dtype=np.float32), source_sr=sample_rate)
    if len(wav) < ENCODER_RATE // 4:
        # resemblyzer trims silence with a VAD; a clip it finds (nearly) silent
        # keeps its untrimmed samples rather than yielding no embedding.
        wav = _resample(np.asarray(audio, dtype=np.float32), sample_rate, ENCODER_RATE)
    embedding = _voice_encoder().embed_utterance(wav)
    return embedding / max(float(np.linalg.norm(embedding)), 1e-12)


def mean_embedding(clips: Sequence[Any], sample_rate: int) -> Any:
    """The unit-length mean d-vector of several utterances of one speaker."""
    import numpy as np

    if not clips:
        raise ValueError("mean_embedding needs at least one clip")
    mean = np.mean([speaker_embedding(clip, sample_rate) for clip in clips], axis=0)
    return mean / max(float(np.linalg.norm(mean)), 1e-12)


def cosine(a: Any, b: Any) -> float:
    """Cosine similarity of two vectors."""
    import numpy as np

    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return float(a @ b / max(np.linalg.norm(a) * np.linalg.norm(b), 1e-12))


def mel_cepstrum(audio: Any, sample_rate: int, n_mels: int = 40, coefficients: int = MCD_COEFFICIENTS) -> Any:
    """Mel cepstra (frames x coefficients, c0 dropped): the cosine transform
    of the natural-log mel *amplitude* spectrum, 25 ms windows every 10 ms,
    scaled as a real cepstrum is (``c_n = 2/M sum_m log|X_m| cos(...)``, the
    convention of SPTK-based MCD), so distortions land in the familiar range
    of a few dB."""
    import librosa
    import numpy as np
    import scipy.fft

    n_fft = int(round(0.025 * sample_rate))
    hop = int(round(0.010 * sample_rate))
    mel = librosa.feature.melspectrogram(y=np.asarray(audio, dtype=np.float32), sr=sample_rate, n_fft=n_fft,
                                         hop_length=hop, n_mels=n_mels, power=2.0, center=False)
    log_amplitude = 0.5 * np.log(np.maximum(mel, 1e-10))
    cepstra = scipy.fft.dct(log_amplitude, type=2, axis=0) / n_mels
    return cepstra[1 : coefficients + 1].T


def mel_cepstral_distortion(reference: Any, synthesized: Any, sample_rate: int) -> float:
    """MCD in dB between two utterances, DTW-aligned on their mel cepstra."""
    import librosa
    import numpy as np

    ref, syn = mel_cepstrum(reference, sample_rate), mel_cepstrum(synthesized, sample_rate)
    if len(ref) == 0 or len(syn) == 0:
        raise ValueError("mel_cepstral_distortion needs two utterances longer than one 25 ms frame")
    _, path = librosa.sequence.dtw(X=ref.T, Y=syn.T, metric="euclidean")
    distances = np.linalg.norm(ref[path[:, 0]] - syn[path[:, 1]], axis=1)
    # Natural-log cepstra: the classic constant 10 / ln 10 * sqrt(2) applies.
    return float(_MCD_SCALE * distances.mean())


def voiced_pitch(audio: Any, sample_rate: int) -> Any:
    """The fundamental frequency (Hz) of an utterance's voiced frames, by
    librosa's probabilistic YIN (50-600 Hz, 20 ms hops); empty when no frame
    is voiced or the audio is shorter than one analysis frame."""
    import librosa
    import numpy as np

    frame = 1 << math.ceil(math.log2(0.064 * sample_rate))  # 64 ms or more: three periods at 50 Hz
    audio = np.asarray(audio, dtype=np.float32)
    if len(audio) < frame:
        return np.zeros(0, dtype=np.float64)
    f0, voiced, _ = librosa.pyin(audio, fmin=PITCH_RANGE[0], fmax=PITCH_RANGE[1], sr=sample_rate,
                                 frame_length=frame, hop_length=sample_rate // 50)
    return f0[voiced & np.isfinite(f0)]


def median_pitch(audio: Any, sample_rate: int) -> float | None:
    """The median of ``voiced_pitch``; None when no frame is voiced."""
    import numpy as np

    voiced_f0 = voiced_pitch(audio, sample_rate)
    return float(np.median(voiced_f0)) if len(voiced_f0) else None


def semitones_apart(a: float, b: float) -> float:
    """How many semitones apart two pitches are (always >= 0)."""
    return abs(12.0 * math.log2(a / b))


def real_time_factor(compute_seconds: float, audio_samples: int, sample_rate: int) -> float:
    """Seconds of compute per second of audio produced."""
    return compute_seconds / max(audio_samples / sample_rate, 1e-9)


def _resample(audio: Any, source: int, target: int) -> Any:
    if source == target:
        return audio
    import soxr

    return soxr.resample(audio, source, target).astype("float32")
