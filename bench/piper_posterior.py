"""How well a Piper voice's posterior encoder reads speech: copy synthesis.

    python bench/piper_posterior.py [--voice en_US-joe-medium] [--warm FILE.safetensors] [--sentences 8]

VITS training renders the decoder from the posterior encoder's reading of
the real speech; a posterior that cannot read it back makes training fit
noise. For sentences the voice speaks through piper-tts (onnxruntime, its
own noise: speech the PyTorch model never produced), the spectrogram goes
through the posterior encoder (its mean) and the voice's decoder, and the
result is compared with the original: mel-cepstral distortion and
resemblyzer similarity. Rows: the freshly initialised posterior (what a
loaded Piper voice has) and, with ``--warm``, one warmed up by
``python -m lorakit_voice.piper_warmup``.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path


def copy_synthesis(vits, clips, rate):
    import numpy as np
    import torch
    from TTS.tts.models.vits import wav_to_spec

    from lorakit_voice.metrics import cosine, mel_cepstral_distortion, speaker_embedding

    audio = vits.config.audio
    mcd, similarity = [], []
    with torch.inference_mode():
        for clip in clips:
            wave = torch.tensor(clip).unsqueeze(0)
            spec = wav_to_spec(wave, audio.fft_size, audio.hop_length, audio.win_length, center=False)
            _, m_q, _, mask = vits.posterior_encoder(spec, torch.tensor([spec.shape[-1]]))
            out = vits.waveform_decoder(m_q * mask)[0, 0].numpy()
            mcd.append(mel_cepstral_distortion(clip, out, rate))
            similarity.append(cosine(speaker_embedding(out, rate), speaker_embedding(clip, rate)))
    return float(np.mean(mcd)), float(np.mean(similarity))


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
    print(f"{len(clips)} sentences spoken by piper-tts; copy synthesis through the posterior mean and the decoder")
    print(f"{'posterior':40s} {'MCD':>6s} {'similarity':>10s} {'time':>6s}")
    for label, model in rows:
        started = time.perf_counter()
        mcd, similarity = copy_synthesis(model, clips, rate)
        print(f"{label:40s} {mcd:6.2f} {similarity:10.3f} {time.perf_counter() - started:5.1f}s")


if __name__ == "__main__":
    main()
