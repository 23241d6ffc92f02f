"""Does a voice run's clone buzz at its decoder's frame rate?

    python bench/frame_buzz.py RUN [RUN ...] [--hop 256]

A HiFiGAN decoder turns one latent frame into ``hop`` samples; a decoder that
renders every frame alike adds a tone at rate / hop (86 Hz for a Piper voice
at 22050 Hz with hop 256, the demo's is 128) and its harmonics, which a pitch
tracker reads as a flat voice at that pitch. For each sample sentence of the
run (``samples/adapter/NN-real.wav``, ``samples/base/NN.wav``,
``samples/adapter/NN.wav``) it prints, for the speaker, the base and the
clone:

* ``comb``: the spectrum's energy within 1 Hz of the first 20 harmonics of
  rate / hop, over the mean of the same at four neighbouring pitches (0.92,
  0.95, 1.06 and 1.09 times it): near 1 for speech, several times more for a
  buzz;
* ``lag``: the waveform's autocorrelation at one frame (``hop`` samples);
* the median pitch and its 10th-90th percentiles (pYIN, as the report's
  ``pitch_gap``): a buzz reads as a narrow band at rate / hop.
"""

from __future__ import annotations

import argparse
from pathlib import Path

NEIGHBOURS = (0.92, 0.95, 1.06, 1.09)
HARMONICS = 20


def comb_share(audio, rate: int, pitch: float) -> float:
    """The share of the spectrum's energy within 1 Hz of ``pitch``'s first harmonics."""
    import numpy as np

    power = np.abs(np.fft.rfft(audio)) ** 2
    freqs = np.fft.rfftfreq(len(audio), 1 / rate)
    near = np.zeros_like(freqs, dtype=bool)
    for k in range(1, HARMONICS + 1):
        near |= np.abs(freqs - k * pitch) < 1.0
    band = (freqs > pitch / 2) & (freqs < pitch * (HARMONICS + 0.5))
    return float(power[near].sum() / power[band].sum())


def comb(audio, rate: int, hop: int) -> float:
    import numpy as np

    frame_rate = rate / hop
    neighbours = [comb_share(audio, rate, frame_rate * ratio) for ratio in NEIGHBOURS]
    return comb_share(audio, rate, frame_rate) / float(np.mean(neighbours))


def lag_correlation(audio, lag: int) -> float:
    import numpy as np

    a = audio - audio.mean()
    head, tail = a[:-lag], a[lag:]
    return float(head @ tail / np.sqrt((head @ head) * (tail @ tail)))


def pitch_spread(audio, rate: int) -> str:
    import numpy as np

    from lorakit_voice.metrics import voiced_pitch

    f0 = voiced_pitch(audio, rate)
    if not len(f0):
        return "  no voiced frame"
    return f"{np.median(f0):6.1f} Hz ({np.percentile(f0, 10):3.0f}-{np.percentile(f0, 90):3.0f})"


def main() -> None:
    import soundfile as sf

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", nargs="+", type=Path)
    parser.add_argument("--hop", type=int, default=256, help="the decoder's samples per latent frame")
    args = parser.parse_args()
    for run in args.runs:
        reals = sorted((run / "samples" / "adapter").glob("*-real.wav"))
        if not reals:
            raise SystemExit(f"{run}: no samples/adapter/NN-real.wav (a voice-clone run folder?)")
        print(f"{run}: comb (1 = speech), lag-{args.hop} autocorrelation, median pitch (10th-90th percentile)")
        for real in reals:
            stem = real.name.removesuffix("-real.wav")
            line = stem
            for kind, path in (("speaker", real), ("base", run / "samples" / "base" / f"{stem}.wav"),
                               ("clone", run / "samples" / "adapter" / f"{stem}.wav")):
                audio, rate = sf.read(path, dtype="float32")
                line += (f" | {kind} comb {comb(audio, rate, args.hop):4.1f} lag {lag_correlation(audio, args.hop):+.2f}"
                         f" {pitch_spread(audio, rate)}")
            print(line, flush=True)


if __name__ == "__main__":
    main()
