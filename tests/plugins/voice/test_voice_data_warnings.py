"""No silently wrong voice data: a NaN clip is an error, not "silent", and a
folder with too little speech names the clips it could not use."""

from types import SimpleNamespace

import numpy as np
import pytest
import soundfile

from lorakit.api import DataError
from lorakit_voice.data import read_speaker

# What read_speaker asks of a VITS: its rate, and (phonemes) no character check.
VITS = SimpleNamespace(config=SimpleNamespace(audio=SimpleNamespace(sample_rate=16000), use_phonemes=True))


def _speaker(folder, broken=None, silent=None):
    rows = []
    for index in range(3):
        samples = 0.3 * np.sin(2 * np.pi * 220 * np.arange(24000) / 16000)
        if index == broken:
            samples[100:200] = np.nan
        if index == silent:
            samples[:] = 0
        (folder / "wavs").mkdir(parents=True, exist_ok=True)
        soundfile.write(str(folder / "wavs" / f"clip{index}.wav"), samples.astype(np.float32), 16000, subtype="FLOAT")
        rows.append(f"clip{index}|Sentence {index}.|Sentence {index}.")
    (folder / "metadata.csv").write_text("\n".join(rows) + "\n")
    return folder


def test_a_clip_with_nan_samples_is_an_error_naming_it(tmp_path):
    folder = _speaker(tmp_path / "spk", broken=1)
    with pytest.raises(DataError) as error:
        read_speaker(folder, VITS, min_total_seconds=1, show=False)
    message = str(error.value)
    assert str(folder / "wavs" / "clip1.wav") in message and "NaN/inf samples" in message and "not silent" in message


def test_too_little_speech_names_the_clips_not_used(tmp_path):
    folder = _speaker(tmp_path / "spk", silent=2)
    with pytest.raises(DataError, match="usable speech in 2 clips") as error:
        read_speaker(folder, VITS, min_total_seconds=30, show=False)
    assert f"not used: {folder / 'wavs' / 'clip2.wav'}: silent" in str(error.value)
