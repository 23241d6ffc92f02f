"""Synthetic music of two styles, rendered offline, for the demo base and samples.

* ``piano``: slow arpeggios of decaying, harmonic-rich notes in major keys
  (the style the demo base is pretrained on).
* ``chiptune``: fast square-wave melodies in minor keys over a kick drum and
  noise hi-hats (the new style of ``samples/music/chiptune``).

The two differ in timbre, tempo, register and rhythm, so a model of one
predicts the codes of the other badly until it is adapted. Every track comes
with a description in the words MusicGen prompts use ("fast chiptune melody
in A minor with drums").
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

SAMPLE_RATE = 16000
STYLES = ("piano", "chiptune")
KEYS = ("C", "D", "E", "F", "G", "A", "B")
_SEMITONES = {"C": 0, "D": 2, "E": 4, "F": 5, "G": 7, "A": 9, "B": 11}
_MAJOR, _MINOR = (0, 2, 4, 5, 7, 9, 11), (0, 2, 3, 5, 7, 8, 10)
#: Every word a description uses (the demo tokenizer's vocabulary).
WORDS = ("calm gentle slow soft piano arpeggio arpeggios chords fast bright energetic chiptune melody retro "
         "game music with drums in major minor a b c d e f g").split()


def _frequency(midi: float) -> float:
    return 440.0 * 2 ** ((midi - 69) / 12)


def _note(midi: int, seconds: float, style: str, rng: Any) -> Any:
    import numpy as np

    t = np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    f0 = _frequency(midi)
    tone = np.zeros_like(t)
    if style == "piano":
        # Harmonics falling off fast and decaying faster the higher they are.
        for h in range(1, 7):
            if h * f0 < SAMPLE_RATE / 2 - 500:
                tone += np.sin(2 * np.pi * h * f0 * t + rng.uniform(0, 6.28)) / h**1.5 * np.exp(-t * (1.5 + h))
        return tone * np.minimum(1.0, t / 0.005)
    # Band-limited square wave with a short plucked envelope.
    for h in range(1, 40, 2):
        if h * f0 < SAMPLE_RATE / 2 - 500:
            tone += np.sin(2 * np.pi * h * f0 * t) / h
    envelope = np.minimum(1.0, t / 0.003) * np.clip(1.0 - t / seconds, 0, 1) ** 0.5
    return 0.5 * tone * envelope


def _drums(seconds: float, beat: float, rng: Any) -> Any:
    """Kick on every beat (a falling sine), noise hi-hat on every half beat."""
    import numpy as np

    out = np.zeros(int(seconds * SAMPLE_RATE))
    kick_t = np.arange(int(0.15 * SAMPLE_RATE)) / SAMPLE_RATE
    kick = np.sin(2 * np.pi * np.cumsum(50 + 100 * np.exp(-kick_t * 30)) / SAMPLE_RATE) * np.exp(-kick_t * 20)
    hat_n = int(0.04 * SAMPLE_RATE)
    for index in range(int(seconds / (beat / 2))):
        start = int(index * beat / 2 * SAMPLE_RATE)
        if index % 2 == 0:
            piece = kick[: len(out) - start]
            out[start : start + len(piece)] += 0.8 * piece
        hat = rng.standard_normal(hat_n) * np.exp(-np.arange(hat_n) / (0.008 * SAMPLE_RATE)) * 0.06
        hat = np.diff(hat, prepend=0.0)  # brighter: high-passed noise
        piece = hat[: len(out) - start]
        out[start : start + len(piece)] += piece
    return out


def render_track(style: str, seconds: float, rng: Any) -> tuple[Any, str]:
    """One track of ``style`` (mono float32 at SAMPLE_RATE) and its description."""
    import numpy as np

    if style not in STYLES:
        raise ValueError(f"unknown style {style!r}; one of {STYLES}")
    key = KEYS[int(rng.integers(len(KEYS)))]
    root = 48 + _SEMITONES[key] if style == "piano" else 72 + _SEMITONES[key]
    scale = _MAJOR if style == "piano" else _MINOR
    bpm = rng.uniform(70, 95) if style == "piano" else rng.uniform(140, 170)
    beat = 60.0 / bpm
    step = beat / 2 if style == "piano" else beat / 4
    out = np.zeros(int(seconds * SAMPLE_RATE) + SAMPLE_RATE)
    position, index = 0.0, 0
    chord = 0
    motif = [int(d) for d in rng.integers(0, 8, size=8)]
    while position < seconds:
        if style == "piano":
            if index % 8 == 0:
                chord = int(rng.choice([0, 3, 4, 5]))
            degree = chord + (0, 2, 4, 7)[index % 4] + (0, 7)[(index // 4) % 2]
            length = 1.2
        else:
            # A two-beat motif per track, moved through a chord progression.
            degree = motif[index % len(motif)] + (0, 3, 4, 0)[(index // 16) % 4]
            length = step * 0.9
        midi = root + scale[degree % 7] + 12 * (degree // 7)
        note = _note(midi, length, style, rng)
        start = int(position * SAMPLE_RATE)
        out[start : start + len(note)] += note[: len(out) - start]
        position += step
        index += 1
    out = out[: int(seconds * SAMPLE_RATE)]
    if style == "chiptune":
        out += _drums(seconds, beat, rng)
    out = out / max(1e-6, float(np.abs(out).max())) * 0.8
    mood = rng.choice(["calm", "gentle", "slow", "soft"]) if style == "piano" else rng.choice(
        ["fast", "bright", "energetic", "retro"])
    if style == "piano":
        description = f"{mood} piano {rng.choice(['arpeggio', 'arpeggios', 'chords'])} in {key.lower()} major"
    else:
        description = f"{mood} chiptune {rng.choice(['melody', 'game music'])} in {key.lower()} minor with drums"
    return out.astype(np.float32), description


def write_style_folder(folder: Path, style: str, tracks: int, seconds: float, seed: int,
                       descriptions: str = "metadata") -> list[tuple[str, str]]:
    """Write ``tracks`` flac files of ``style`` into ``folder`` with their
    descriptions in ``metadata.jsonl`` (``descriptions="metadata"``), in
    sidecar ``.txt`` files (``"sidecar"``) or nowhere (``"none"``)."""
    import json

    import numpy as np
    import soundfile

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    written = []
    for index in range(tracks):
        audio, description = render_track(style, seconds, rng)
        name = f"{style}-{index + 1:02d}.flac"
        soundfile.write(str(folder / name), audio, SAMPLE_RATE, subtype="PCM_16")
        if descriptions == "sidecar":
            (folder / name).with_suffix(".txt").write_text(description + "\n", encoding="utf-8")
        written.append((name, description))
    if descriptions == "metadata":
        lines = [json.dumps({"file_name": name, "text": text}) for name, text in written]
        (folder / "metadata.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return written


def main() -> None:
    """Write the sample folders: ``python -m lorakit_music.synthetic --out samples/music``."""
    import argparse

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    write_style_folder(args.out / "chiptune", "chiptune", tracks=10, seconds=16, seed=101)
    write_style_folder(args.out / "retain", "piano", tracks=4, seconds=16, seed=202, descriptions="sidecar")


if __name__ == "__main__":
    main()
