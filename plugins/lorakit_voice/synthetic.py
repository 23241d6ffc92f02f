"""Synthetic speech from espeak-ng: the demo base's training voices and the sample speaker.

espeak-ng (a Debian package) speaks any English sentence in well-separated
voices in a few milliseconds, offline, so the demo needs no downloaded
recordings. The sentences are drawn from small word lists by a seeded
generator, so a rebuild on the same espeak-ng gives the same files.

* ``BASE_VOICES``: the speakers the demo VITS is pretrained on (its speaker
  slots).
* ``SAMPLE_VOICE``: the speaker a LoRA adapter learns; the base never hears it.

Rewrite the sample speaker (``samples/voice/<name>/`` with wavs and an
LJSpeech ``metadata.csv``)::

    python -m lorakit_voice.synthetic --out samples/voice
"""

from __future__ import annotations

import argparse
import random
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from lorakit.api import DataError


@dataclass(frozen=True)
class Voice:
    """An espeak-ng voice: ``-v`` voice+variant, ``-p`` pitch, ``-s`` words a minute."""

    name: str
    voice: str
    pitch: int
    speed: int = 160

    def command(self, text: str, wav: Path) -> list[str]:
        return ["espeak-ng", "-v", self.voice, "-p", str(self.pitch), "-s", str(self.speed), "-w", str(wav), text]


BASE_VOICES = (
    Voice("low-male", "en+m3", 35),
    Voice("high-female", "en+f2", 70),
    Voice("klatt", "en-us+klatt", 55),
)
# Measured with resemblyzer: this voice's similarity to the base voices is
# 0.53-0.63 (same voice, other sentences: 0.87-0.90), so there is a clear
# distance for an adapter to cover.
SAMPLE_VOICE = Voice("kauko", "en+kaukovalta", 50)

_SUBJECTS = ("the old man", "a young girl", "my brother", "the teacher", "our neighbour", "the small dog",
             "a tall woman", "the farmer", "his sister", "the driver", "a quiet child", "the captain")
_VERBS = ("found", "painted", "carried", "opened", "watched", "cleaned", "wanted", "bought", "followed",
          "dropped", "fixed", "covered")
_OBJECTS = ("a red box", "the wooden door", "some fresh bread", "the yellow kite", "a heavy bag", "the blue car",
            "a silver spoon", "the garden gate", "an empty jar", "the big map", "a warm coat", "the letters")
_PLACES = ("near the river", "in the morning", "after lunch", "by the window", "on the hill", "at the station",
           "under the bridge", "before the storm", "in the kitchen", "during the game", "behind the school",
           "at night")
_QUESTIONS = ("did you see", "where is", "who took", "why would anyone want", "can we keep", "have you heard about")


def sentences(count: int, seed: int) -> list[str]:
    """``count`` distinct short English sentences (statements and questions)."""
    rng = random.Random(seed)
    seen: list[str] = []
    while len(seen) < count:
        if rng.random() < 0.2:
            text = f"{rng.choice(_QUESTIONS)} {rng.choice(_OBJECTS)} {rng.choice(_PLACES)}?"
        else:
            text = f"{rng.choice(_SUBJECTS)} {rng.choice(_VERBS)} {rng.choice(_OBJECTS)} {rng.choice(_PLACES)}."
        text = text[0].upper() + text[1:]
        if text not in seen:
            seen.append(text)
    return seen


def speak(voice: Voice, text: str, wav: Path) -> Path:
    """Write ``text`` spoken by ``voice`` to ``wav`` (espeak-ng's 22050 Hz 16-bit)."""
    if shutil.which("espeak-ng") is None:
        raise DataError("espeak-ng is not installed; install it (apt-get install espeak-ng) to make synthetic speech")
    subprocess.run(voice.command(text, wav), check=True, capture_output=True)
    return wav


def write_speaker(folder: Path, voice: Voice, count: int, seed: int) -> Path:
    """A speaker folder: ``0001.wav``... and an LJSpeech ``metadata.csv`` (``id|text|text``)."""
    folder.mkdir(parents=True, exist_ok=True)
    rows = []
    for index, text in enumerate(sentences(count, seed), start=1):
        clip = f"{index:04d}"
        speak(voice, text, folder / f"{clip}.wav")
        rows.append(f"{clip}|{text}|{text}")
    (folder / "metadata.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    return folder


def write_samples(out: Path, count: int = 40, seed: int = 7) -> Path:
    """The sample speaker's folder under ``out`` (``out/<voice name>``)."""
    return write_speaker(Path(out) / SAMPLE_VOICE.name, SAMPLE_VOICE, count, seed)


def main(argv: list[str] | None = None) -> None:
    """Command line: ``python -m lorakit_voice.synthetic --out samples/voice``."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, required=True, help="folder to write the sample speaker into")
    parser.add_argument("--count", type=int, default=40, help="number of clips (default 40, about 2 minutes)")
    args = parser.parse_args(argv)
    print(f"wrote {write_samples(args.out, args.count)}")


if __name__ == "__main__":
    main()
