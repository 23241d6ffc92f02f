"""How like its own voices does a voice base speak? The ceiling of any clone.

    python bench/voice_ceiling.py [--base demo] [--sentences 8]

For each speaker slot of the demo base (its voices are ``BASE_VOICES``),
espeak-ng speaks ``--sentences`` new sentences in that voice; the base speaks
the same sentences in the slot. Printed per voice: resemblyzer similarity of
the base's speech to the real voice (the held-out clips' mean d-vector) and,
for scale, of each real clip to the others (leave one out). An adapter learns
to speak a new voice through the same decoder, so its similarity to a target
rarely goes past what the base reaches on voices it was trained on.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np

from lorakit import runs
from lorakit_voice.data import read_speaker
from lorakit_voice.metrics import cosine, mean_embedding, speaker_embedding
from lorakit_voice.synthetic import BASE_VOICES, write_speaker

#: Sentences none of the base's training clips or the panel use.
SEED = 555


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--base", default="demo")
    parser.add_argument("--sentences", type=int, default=8)
    args = parser.parse_args()
    print(f"{'voice':12} {'base speaking it':>16} {'real, leave one out':>20}")
    scores = []
    task = runs.make_task(runs.RunConfig(task="voice-clone", base=args.base))
    base = runs.load_base(task, args.base)
    with tempfile.TemporaryDirectory() as tmp:
        for voice in BASE_VOICES:
            folder = write_speaker(Path(tmp) / voice.name, voice, args.sentences, SEED)
            clips, _ = read_speaker(folder, base.model, 1.0, show=False)
            rate = clips[0].sample_rate
            real = mean_embedding([c.audio for c in clips], rate)
            spoken = runs.predict("voice-clone", [c.text for c in clips], base_name=args.base,
                                  options={"slot": voice.name})
            ours = float(np.mean([cosine(speaker_embedding(s["audio"], rate), real) for s in spoken]))
            alone = float(np.mean([cosine(speaker_embedding(c.audio, rate),
                                          mean_embedding([o.audio for o in clips if o is not c], rate)) for c in clips]))
            scores.append(ours)
            print(f"{voice.name:12} {ours:16.3f} {alone:20.3f}", flush=True)
    print(f"mean {float(np.mean(scores)):.3f} (base {args.base})")


if __name__ == "__main__":
    main()
