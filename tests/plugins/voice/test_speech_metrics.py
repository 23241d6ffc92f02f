"""Speech metrics on espeak-ng voices: similarity and MCD separate voices."""

from voice_speakers import write_speaker

from lorakit.api import prepare_folder
from lorakit_voice.metrics import cosine, mean_embedding, mel_cepstral_distortion, real_time_factor, speaker_embedding


def test_similarity_and_mcd_tell_voices_apart(tmp_path):
    from lorakit_voice import synthetic

    texts = ["The farmer opened the garden gate.", "A quiet child found the yellow kite."]
    target = prepare_folder(write_speaker(tmp_path / "a", texts), 16000).clips
    other = prepare_folder(write_speaker(tmp_path / "b", texts, synthetic.BASE_VOICES[0]), 16000).clips
    reference = mean_embedding([target[0].audio], 16000)
    same = cosine(speaker_embedding(target[1].audio, 16000), reference)
    different = cosine(speaker_embedding(other[1].audio, 16000), reference)
    assert same > different + 0.1
    assert mel_cepstral_distortion(target[0].audio, target[0].audio, 16000) == 0.0
    assert mel_cepstral_distortion(target[0].audio, other[0].audio, 16000) > 12.0


def test_real_time_factor():
    assert real_time_factor(0.5, 16000, 16000) == 0.5


def test_median_pitch_finds_a_voice_register(tmp_path):
    """A harmonic tone's pitch within a percent; espeak-ng's low male and high
    female voices a register apart; silence has no pitch."""
    import numpy as np

    from lorakit_voice import synthetic
    from lorakit_voice.metrics import median_pitch, semitones_apart

    time = np.arange(16000) / 16000
    tone = sum(np.sin(2 * np.pi * 220 * k * time) / k for k in (1, 2, 3)).astype(np.float32) * 0.3
    assert abs(median_pitch(tone, 16000) - 220) < 2.2
    assert median_pitch(np.zeros(16000, dtype=np.float32), 16000) is None
    assert median_pitch(tone[:100], 16000) is None  # shorter than one frame

    texts = ["The farmer opened the garden gate."]
    low, high = (prepare_folder(write_speaker(tmp_path / voice.name, texts, voice), 16000).clips[0].audio
                 for voice in (synthetic.BASE_VOICES[0], synthetic.BASE_VOICES[1]))
    assert 80 < median_pitch(low, 16000) < 110 and 210 < median_pitch(high, 16000) < 270
    assert semitones_apart(median_pitch(high, 16000), median_pitch(low, 16000)) > 12
    assert semitones_apart(440.0, 220.0) == semitones_apart(220.0, 440.0) == 12.0
