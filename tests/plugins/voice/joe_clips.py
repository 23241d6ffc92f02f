"""Piper's joe (a voice trained on a real recording) speaking known
sentences, for the tests of what Whisper hears."""

import wave
from pathlib import Path

SENTENCES = ["Please send the invoice to our office before Friday.",
             "She planted tomatoes along the fence last spring.",
             "Nobody expected the small museum to draw such a crowd.",
             "The train to the coast leaves every hour on weekdays.",
             "He fixed the bicycle chain with a borrowed wrench.",
             "The committee will announce its decision next month.",
             "My brother wanted a warm coat near the river.",
             "Can we keep the wooden door at the station?",
             "The weather stayed bright and warm all afternoon."]


def joe_voice():
    import piper

    from lorakit_voice.piper import resolve_voice

    return piper.PiperVoice.load(str(resolve_voice("en_US-joe-medium")[0]))


def speak_without_noise(voice, text: str, path: Path) -> None:
    """Piper's sampling noise off: the same text gives the same clip, run after run."""
    from piper.config import SynthesisConfig

    with wave.open(str(path), "wb") as out:
        voice.synthesize_wav(text, out, SynthesisConfig(noise_scale=0.0, noise_w_scale=0.0))
