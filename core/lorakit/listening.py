"""Writing audio for people to listen to and look at: wav files and spectrogram pictures.

Any plugin whose outputs are audio writes its samples with these, so every
run folder's samples look and sound alike.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any


def write_wav(path: Path, audio: Any, sample_rate: int) -> None:
    """A 16-bit PCM wav."""
    import soundfile

    soundfile.write(str(path), audio, sample_rate, subtype="PCM_16")


def write_mel_png(path: Path, audio: Any, sample_rate: int, title: str) -> None:
    """A log-mel spectrogram picture of ``audio``."""
    import librosa
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    mel = librosa.feature.melspectrogram(y=np.asarray(audio, dtype=np.float32), sr=sample_rate, n_fft=1024,
                                         hop_length=256, n_mels=80)
    figure, axis = plt.subplots(figsize=(8, 3))
    axis.imshow(librosa.power_to_db(mel, ref=np.max), origin="lower", aspect="auto", cmap="magma",
                extent=[0, len(audio) / sample_rate, 0, 80])
    axis.set(title=title, xlabel="seconds", ylabel="mel bin")
    figure.tight_layout()
    figure.savefig(path, dpi=80)
    plt.close(figure)
