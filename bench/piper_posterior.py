"""How well a Piper voice's posterior encoder reads speech: copy synthesis.

    python bench/piper_posterior.py [--voice en_US-joe-medium] [--warm FILE.safetensors] [--sentences 8]
    python bench/piper_posterior.py --warm FILE.safetensors --speaker samples/voice/kauko [--clips 8]

VITS training renders the decoder from the posterior encoder's reading of
the real speech; a posterior that cannot read it back makes training fit
noise. For sentences the voice speaks through piper-tts (onnxruntime, its
own noise: speech the PyTorch model never produced), the spectrogram goes
through the posterior encoder (its mean) and the voice's decoder, and the
result is compared with the original: mel-cepstral distortion and
resemblyzer similarity. Rows: the freshly initialised posterior (what a
loaded Piper voice has) and, with ``--warm``, one warmed up by
``python -m lorakit_voice.piper_warmup``.

With ``--speaker DIR``, the pitch a training run's decoder is taught from:
for the speaker's clips (and the voice's own sentences, for comparison), the
median pitch of the clip and of its copy synthesis through a sample of the
posterior (``z = mean + noise * scale``, as VITS training reads speech).
A posterior that renders the speaker higher than he speaks would teach the
decoder's LoRA to lower the pitch, which it would then do to the voice's own
latents when it speaks text (README, Piper voices: the likely cause of a
clone's pitch moving down).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path


def copy(vits, clip, sample: bool = False):
    """``clip`` read by the posterior encoder (its mean, or with ``sample`` a
    draw as VITS training reads speech) and rendered by the decoder."""
    import torch
    from TTS.tts.models.vits import wav_to_spec

    audio = vits.config.audio
    with torch.inference_mode():
        spec = wav_to_spec(torch.tensor(clip).unsqueeze(0), audio.fft_size, audio.hop_length, audio.win_length,
                           center=False)
        z, m_q, _, mask = vits.posterior_encoder(spec, torch.tensor([spec.shape[-1]]))
        return vits.waveform_decoder((z if sample else m_q) * mask)[0, 0].numpy()


def copy_synthesis(vits, clips, rate):
    import numpy as np

    from lorakit_voice.metrics import cosine, mel_cepstral_distortion, speaker_embedding

    mcd, similarity = [], []
    for clip in clips:
        out = copy(vits, clip)
        mcd.append(mel_cepstral_distortion(clip, out, rate))
        similarity.append(cosine(speaker_embedding(out, rate), speaker_embedding(clip, rate)))
    return float(np.mean(mcd)), float(np.mean(similarity))


def copy_pitch(vits, clip, rate, seed):
    """Median pitch (Hz) of ``clip`` and of its copy synthesis through a posterior sample."""
    from lorakit.api import seeded
    from lorakit_voice.metrics import median_pitch

    with seeded(seed):
        out = copy(vits, clip, sample=True)
    return median_pitch(clip, rate), median_pitch(out, rate)


def pitch_rows(vits, named_clips, rate) -> None:
    import math

    print(f"{'clip':28s} {'pitch':>8s} {'copy':>8s} {'semitones':>9s}")
    for seed, (name, clip) in enumerate(named_clips):
        spoken, copied = copy_pitch(vits, clip, rate, seed)
        if spoken is None or copied is None:
            print(f"{name:28s} no voiced frame in the clip or its copy")
            continue
        print(f"{name:28s} {spoken:6.1f}Hz {copied:6.1f}Hz {12 * math.log2(copied / spoken):+9.1f}", flush=True)


def main() -> None:
    import numpy as np
    from piper.voice import PiperVoice

    from lorakit_voice.base import load_vits
    from lorakit_voice.piper import resolve_voice
    from lorakit_voice.piper_warmup import load_warm
    from lorakit_voice.synthetic import sentences

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--voice", default="en_US-joe-medium")
    parser.add_argument("--warm", help="safetensors written by lorakit_voice.piper_warmup")
    parser.add_argument("--sentences", type=int, default=8)
    parser.add_argument("--speaker", type=Path, help="a folder of the speaker's wav clips: print pitch rows")
    parser.add_argument("--clips", type=int, default=8, help="with --speaker: how many of its clips")
    args = parser.parse_args()
    vits = load_vits(f"piper:{args.voice}").model
    onnx_path, _ = resolve_voice(args.voice)
    piper = PiperVoice.load(onnx_path)
    rate = piper.config.sample_rate
    # Sentences no warm-up saw (it uses seed 4242).
    clips = [np.concatenate([c.audio_float_array for c in piper.synthesize(text)])
             for text in sentences(args.sentences, seed=777)]
    rows = [("fresh (as loaded)", vits)]
    if args.warm:
        warm = load_vits(f"piper:{args.voice}").model
        load_warm(warm, Path(args.warm), onnx_path)
        rows.append((f"warmed ({Path(args.warm).name})", warm))
    if args.speaker:
        import soundfile as sf

        model = rows[-1][1]
        print(f"copy synthesis through a sample of the {rows[-1][0]} posterior and the decoder")
        pitch_rows(model, [(f"{args.voice} {i}", clip) for i, clip in enumerate(clips)], rate)
        named = []
        for path in sorted(args.speaker.glob("*.wav"))[:args.clips]:
            clip, clip_rate = sf.read(path, dtype="float32")
            if clip_rate != rate:
                raise SystemExit(f"{path}: {clip_rate} Hz, the voice speaks at {rate} Hz (resample it first)")
            named.append((f"{args.speaker.name}/{path.name}", clip))
        pitch_rows(model, named, rate)
        return
    print(f"{len(clips)} sentences spoken by piper-tts; copy synthesis through the posterior mean and the decoder")
    print(f"{'posterior':40s} {'MCD':>6s} {'similarity':>10s} {'time':>6s}")
    for label, model in rows:
        started = time.perf_counter()
        mcd, similarity = copy_synthesis(model, clips, rate)
        print(f"{label:40s} {mcd:6.2f} {similarity:10.3f} {time.perf_counter() - started:5.1f}s")


if __name__ == "__main__":
    main()
