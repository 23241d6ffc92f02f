"""Writing small music folders for the music plugin's tests."""

from pathlib import Path

import numpy as np
import soundfile

from lorakit_music import synthetic

RATE = synthetic.SAMPLE_RATE
SAMPLES = Path(__file__).resolve().parents[3] / "samples" / "music"


def write_track(path: Path, seconds: float, seed: int = 0, style: str = "chiptune", rate: int = RATE) -> str:
    """A synthetic track of ``seconds`` at ``rate``; returns its description."""
    audio, description = synthetic.render_track(style, seconds, np.random.default_rng(seed))
    if rate != RATE:
        import soxr

        audio = soxr.resample(audio, RATE, rate)
    path.parent.mkdir(parents=True, exist_ok=True)
    soundfile.write(str(path), audio, rate)
    return description
