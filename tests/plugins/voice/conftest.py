"""Fixtures of the voice plugin's tests: the demo VITS, and speaker folders
spoken by espeak-ng on the fly."""

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]
SAMPLES = REPO / "samples" / "voice"


@pytest.fixture(scope="session")
def demo_base():
    """The committed demo base, loaded once for the session."""
    from lorakit_voice.task import VoiceCloneTask

    return VoiceCloneTask().load_base("demo")


@pytest.fixture(scope="session")
def joe_folder(tmp_path_factory):
    """joe speaking ``joe_clips.SENTENCES`` (``00.wav``, ...), without noise so
    the clips repeat, and with no transcripts."""
    pytest.importorskip("piper")
    from joe_clips import SENTENCES, joe_voice, speak_without_noise

    voice = joe_voice()
    folder = tmp_path_factory.mktemp("joe")
    for index, text in enumerate(SENTENCES):
        speak_without_noise(voice, text, folder / f"{index:02d}.wav")
    return folder
