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
