"""Fixtures of the voice plugin's tests: the demo VITS, and speaker folders
spoken by espeak-ng on the fly."""

from pathlib import Path

import pytest
import torch

torch.set_num_threads(2)

REPO = Path(__file__).resolve().parents[3]
SAMPLES = REPO / "samples" / "voice"


@pytest.fixture(scope="session")
def demo_base():
    """The committed demo base, loaded once for the session."""
    from lorakit_voice.task import VoiceCloneTask

    return VoiceCloneTask().load_base("demo")
