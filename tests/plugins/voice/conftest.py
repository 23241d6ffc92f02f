"""Fixtures of the voice plugin's tests: the demo VITS, and speaker folders
spoken by espeak-ng on the fly."""

from pathlib import Path

import pytest
import torch

torch.set_num_threads(2)

REPO = Path(__file__).resolve().parents[3]
SAMPLES = REPO / "samples" / "voice"


@pytest.fixture(scope="session", autouse=True)
def voice_task_registered():
    """The voice-clone task in the process-wide host, entry point or not."""
    import lorakit_voice
    from lorakit.plugins import get_host

    host = get_host()
    if "voice-clone" not in host.tasks:
        host.add_plugin(lorakit_voice, "voice-clone-tests")
    return host


@pytest.fixture(scope="session")
def demo_base():
    """The committed demo base, loaded once for the session."""
    from lorakit_voice.task import VoiceCloneTask

    return VoiceCloneTask().load_base("demo")


def write_speaker(folder: Path, texts: list[str], voice=None) -> Path:
    """Clips of ``texts`` spoken by ``voice`` (the sample voice) with an LJSpeech metadata.csv."""
    from lorakit_voice import synthetic

    voice = voice or synthetic.SAMPLE_VOICE
    folder.mkdir(parents=True, exist_ok=True)
    rows = []
    for index, text in enumerate(texts, start=1):
        synthetic.speak(voice, text, folder / f"{index:03d}.wav")
        rows.append(f"{index:03d}|{text}|{text}")
    (folder / "metadata.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    return folder
