"""Build the tiny demo VITS (``--base demo``) from nothing, offline.

The demo base is a 1.4 M-parameter coqui ``Vits`` (16 kHz, graphemes, no
phonemizer, ``use_sdp=False``) with one speaker slot per voice in
``synthetic.BASE_VOICES``. It is pretrained on espeak-ng speech of those
voices with coqui's own losses (mel L1, KL, duration, and, in the second half,
the GAN losses against a small discriminator), then saved the way released
coqui checkpoints are: ``model.pth`` holding ``{"model": generator weights}``
(no discriminator) and ``config.json``. It never hears the sample speaker.

Rebuild the committed demo base (53 minutes measured on 2 CPU cores; seeded,
so a rebuild on the same stack with the same thread count gives the same
weights)::

    python -m lorakit_voice.make_demo --out plugins/lorakit_voice/demo_base

``--quick`` trains a few steps on a few clips only (for tests).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path
from typing import Any

from lorakit_voice import synthetic
from lorakit_voice.base import save_checkpoint

SEED = 0
SAMPLE_RATE = 16000
CLIPS_PER_VOICE, QUICK_CLIPS = 120, 4
STEPS, QUICK_STEPS = 2400, 3
#: Steps before the discriminator joins: mel/KL/duration alone get the
#: voices right fast; the GAN then sharpens the waveform. The GAN half is
#: what lets a clone sound like its target: with 1500 steps and the GAN in
#: the last fifth only, the base spoke its own voices at resemblyzer
#: similarity 0.64-0.73 (0.73-0.78 through its posterior path), and clones
#: of new voices could not get past that; this recipe reaches 0.77-0.82
#: (bench/voice_ceiling.py).
GAN_FROM = 0.5
BATCH_SIZE = 8
LEARNING_RATE = 1e-3
#: Discriminator periods: the scale discriminator plus one period (coqui's
#: five cost about twice as much per step on a CPU for a demo this size).
PERIODS = [2]

MODEL_CARD = """# lorakit demo VITS

A tiny coqui-tts `Vits` (16 kHz, grapheme input, {parameters:,} parameters) pretrained
from scratch for {steps} steps on espeak-ng speech of {voices} voices
({names}), {clips} clips each (see `lorakit_voice/synthetic.py`). Its speaker slots are
those voices. It is a demo base for `lorakit run voice-clone --base demo`, not a useful
TTS voice.

Files: `model.pth` (`{{"model": state_dict}}`, generator only, as released coqui
checkpoints; loads with `torch.load(..., weights_only=True)`) and `config.json`.

Rebuild: `python -m lorakit_voice.make_demo --out plugins/lorakit_voice/demo_base`
"""


def build_config(speakers: list[str]) -> Any:
    """A tiny multi-speaker ``VitsConfig`` speaking lowercase graphemes.

    FACTS: the decoder's upsample rates must multiply to ``hop_length``; the
    stochastic duration predictor hard-codes 192 channels, so a tiny model
    uses the deterministic one.
    """
    from TTS.config.shared_configs import BaseAudioConfig
    from TTS.tts.configs.shared_configs import CharactersConfig
    from TTS.tts.configs.vits_config import VitsConfig
    from TTS.tts.models.vits import VitsArgs

    audio = BaseAudioConfig(sample_rate=SAMPLE_RATE, fft_size=512, win_length=512, hop_length=128, num_mels=64,
                            mel_fmin=0, mel_fmax=SAMPLE_RATE // 2)
    args = VitsArgs(
        hidden_channels=64, hidden_channels_ffn_text_encoder=128, num_heads_text_encoder=2,
        num_layers_text_encoder=2, num_layers_posterior_encoder=4, num_layers_flow=2, use_sdp=False,
        out_channels=audio.fft_size // 2 + 1, spec_segment_size=32,
        upsample_rates_decoder=[8, 4, 4], upsample_kernel_sizes_decoder=[16, 8, 8], upsample_initial_channel_decoder=96,
        resblock_type_decoder="1", resblock_kernel_sizes_decoder=[3, 7], resblock_dilation_sizes_decoder=[[1, 3, 5]] * 2,
        use_speaker_embedding=True, speaker_embedding_channels=64, init_discriminator=False,
        periods_multi_period_discriminator=PERIODS,
    )
    characters = CharactersConfig(
        characters_class="TTS.tts.models.vits.VitsCharacters", characters="abcdefghijklmnopqrstuvwxyz",
        punctuations=" .,!?'-", pad="<PAD>", eos=None, bos=None, blank="<BLNK>", phonemes=None,
        is_unique=True, is_sorted=True,
    )
    # coqui's English cleaner reads numbers, times, money and abbreviations as
    # words ("5" -> "five"); on the demo's own sentences it is basic_cleaners.
    return VitsConfig(
        model_args=args, audio=audio, characters=characters, use_phonemes=False, text_cleaner="english_cleaners",
        add_blank=True, speakers=list(speakers), use_speaker_embedding=True, run_name="lorakit-demo-vits",
    )


def build_model(config: Any) -> Any:
    """A freshly initialised ``Vits`` (seeded)."""
    import torch
    from TTS.tts.models.vits import Vits

    torch.manual_seed(SEED)
    return Vits(config)


def speech(clips_per_voice: int, folder: Path) -> list[tuple[Any, str, int]]:
    """(audio, text, speaker id) of every base voice, prepared exactly as the
    task prepares a user's clips (mono, 16 kHz, trimmed, loudness-normalised)."""
    from lorakit.api import prepare_folder

    clips = []
    for speaker_id, voice in enumerate(synthetic.BASE_VOICES):
        # Each voice reads its own sentences: the model must not tie text to voice.
        voice_folder = synthetic.write_speaker(folder / voice.name, voice, clips_per_voice, seed=100 + speaker_id)
        prepared = prepare_folder(voice_folder, SAMPLE_RATE)
        clips += [(clip.audio, clip.text, speaker_id) for clip in prepared.clips]
    return clips


def pretrain(model: Any, clips: list, steps: int, log=print) -> dict[str, float]:
    """Train every weight with coqui's losses; returns the last generator losses.

    The first ``GAN_FROM`` of the steps leave the discriminator out (mel L1,
    KL and duration only: a third of the cost of a GAN step on a CPU); the
    rest are coqui's two GAN steps."""
    import torch
    from TTS.tts.layers.vits.discriminator import VitsDiscriminator

    from lorakit_voice.batch import collate
    from lorakit_voice.losses import generator_losses

    torch.manual_seed(SEED)
    disc = VitsDiscriminator(periods=PERIODS)
    criteria = model.get_criterion()
    generator_params = list(model.parameters())
    g_opt = torch.optim.AdamW(generator_params, lr=LEARNING_RATE, betas=(0.8, 0.99))
    d_opt = torch.optim.AdamW(disc.parameters(), lr=LEARNING_RATE / 2, betas=(0.8, 0.99))
    schedule = torch.optim.lr_scheduler.LambdaLR(g_opt, lambda s: min(1.0, (s + 1) / 50) * max(0.05, 1 - s / steps))
    generator = torch.Generator().manual_seed(SEED)
    tokens = [model.tokenizer.text_to_ids(text) for _, text, _ in clips]
    gan_from = int(steps * GAN_FROM)
    model.train()
    losses: dict[str, float] = {}
    for step in range(steps):
        pick = torch.randperm(len(clips), generator=generator)[:BATCH_SIZE].tolist()
        batch = collate(model, [tokens[i] for i in pick], [clips[i][0] for i in pick], [clips[i][2] for i in pick])
        if step < gan_from:
            g_losses = generator_losses(model, batch, criteria[1])
        else:
            model.disc = disc  # coqui's train_step reads it from the model
            # Index 0 runs the generator forward (and caches it) and scores the discriminator.
            _, d_losses = model.train_step(batch, criteria[0], 0)
            d_opt.zero_grad(set_to_none=True)
            d_losses["loss"].backward(inputs=list(disc.parameters()))
            torch.nn.utils.clip_grad_norm_(disc.parameters(), 5.0)
            d_opt.step()
            _, g_losses = model.train_step(batch, criteria[1], 1)
            del model.disc  # keep generator_params the generator's alone
        g_opt.zero_grad(set_to_none=True)
        g_losses["loss"].backward(inputs=generator_params)
        torch.nn.utils.clip_grad_norm_(generator_params, 5.0)
        g_opt.step()
        schedule.step()
        losses = {k: round(float(getattr(v, "detach", lambda: v)()), 3) for k, v in g_losses.items()}
        if step % 100 == 0 or step == steps - 1 or step == gan_from:
            log(f"step {step:5d}  " + "  ".join(f"{k} {v}" for k, v in losses.items()))
    model.eval()
    return losses


def make_demo(out: Path, quick: bool = False, steps: int | None = None, log=print) -> Path:
    """Build, pretrain and save the demo base into ``out``; returns ``out``."""
    names = [voice.name for voice in synthetic.BASE_VOICES]
    config = build_config(names)
    model = build_model(config)
    count = QUICK_CLIPS if quick else CLIPS_PER_VOICE
    steps = steps or (QUICK_STEPS if quick else STEPS)
    with tempfile.TemporaryDirectory() as tmp:
        clips = speech(count, Path(tmp))
    seconds = sum(len(audio) for audio, _, _ in clips) / SAMPLE_RATE
    log(f"{len(clips)} clips, {seconds / 60:.1f} min of speech from {len(names)} voices")
    started = time.perf_counter()
    pretrain(model, clips, steps, log=log)
    log(f"pretrained in {time.perf_counter() - started:.1f} s")
    save_checkpoint(model, out)
    parameters = sum(p.numel() for p in model.parameters())
    (out / "README.md").write_text(MODEL_CARD.format(parameters=parameters, steps=steps, voices=len(names),
                                                     names=", ".join(names), clips=count))
    return out


def main(argv: list[str] | None = None) -> None:
    """Command line: ``python -m lorakit_voice.make_demo --out DIR [--quick]``."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, required=True, help="folder to write the demo base into")
    parser.add_argument("--quick", action="store_true", help="a few training steps on a few clips only (tests)")
    parser.add_argument("--steps", type=int, default=None, help="pretraining steps (default %d)" % STEPS)
    args = parser.parse_args(argv)
    import logging

    import torch

    logging.getLogger("TTS").setLevel(logging.ERROR)  # coqui logs every model build
    torch.set_num_threads(min(2, torch.get_num_threads()))  # the published timing is for 2 cores
    make_demo(args.out, quick=args.quick, steps=args.steps)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
