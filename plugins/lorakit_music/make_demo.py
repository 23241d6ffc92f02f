"""Build the tiny demo MusicGen (``--base demo``) from nothing, offline.

The demo base is a ``MusicgenForConditionalGeneration`` of the real classes,
about a million parameters: a 16 kHz EnCodec (50 frames/s, 4 codebooks of
128 codes), a one-layer T5 text encoder with a word-level tokenizer, and a
three-layer decoder. Built in four stages, all seeded:

1. the codec's encoder and decoder train as an autoencoder (waveform L1 and
   multi-resolution spectrogram L1) on synthetic music of both styles, as a
   real EnCodec is trained on all kinds of music;
2. its residual codebooks are initialised by k-means on encoder latents (a
   config-built EnCodec's codebooks are all zeros: every frame is code 0);
3. the codec's decoder is tuned on quantised latents, so codes decode well;
4. the text encoder and the MusicGen decoder are pretrained on piano tracks
   only (``synthetic.py``), with one description in ten dropped, so that
   classifier-free guidance has an unconditional model to contrast with.

It never hears chiptune, the style of ``samples/music/chiptune``.

Rebuild the committed demo base (about 15 minutes on 2 idle CPU cores)::

    python -m lorakit_music.make_demo --out plugins/lorakit_music/demo_base

``--quick`` trains a few steps on a few tracks only (for tests).
"""

from __future__ import annotations

import argparse
import string
import time
from pathlib import Path
from typing import Any

from lorakit_music import synthetic

SEED = 0
CODEBOOK_SIZE, CODEBOOKS = 128, 4
#: 16 kHz / (8 * 5 * 4 * 2) = 50 codec frames per second, as MusicGen's codec.
RATIOS = [8, 5, 4, 2]
CODEC_STEPS, TUNE_STEPS, LM_STEPS = 2500, 400, 1500
QUICK = {"codec": 3, "tune": 2, "lm": 3, "tracks": 4}
TRACKS, TRACK_SECONDS, WINDOW_SECONDS = 120, 20, 10
SEGMENT = 8000  # codec training crops: 0.5 s, 25 frames
MAX_FRAMES = 1500  # 30 s, the longest window the task allows

MODEL_CARD = """# lorakit demo MusicGen

A tiny `MusicgenForConditionalGeneration` ({parameters:,} parameters): a 16 kHz EnCodec
(50 frames/s, {codebooks} codebooks of {codebook_size} codes) trained as an autoencoder on
synthetic music with k-means codebooks, a one-layer T5 text encoder with a word-level
tokenizer, and a three-layer decoder pretrained for {steps} steps on {tracks} synthetic
piano tracks with descriptions (see `lorakit_music/synthetic.py`). It is a demo base for
`lorakit run music-style --base demo`, not a useful music model: its codec is small and
its clips sound like it.

Rebuild: `python -m lorakit_music.make_demo --out plugins/lorakit_music/demo_base`
"""


def build_processor() -> Any:
    """A ``MusicgenProcessor``: EnCodec's feature extractor and a T5
    tokenizer whose pieces are the description words, then single characters
    (any other word is spelt out). Cased, like T5's own: "Calm" is spelt."""
    from transformers import EncodecFeatureExtractor, MusicgenProcessor, T5Tokenizer

    pieces = [("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0)]
    pieces += [("\u2581" + word, -2.0) for word in dict.fromkeys(synthetic.WORDS)]
    pieces += [("\u2581", -6.0)] + [(c, -8.0) for c in string.ascii_letters + string.digits + "'-,."]
    tokenizer = T5Tokenizer(vocab=pieces, extra_ids=0, model_max_length=64)
    features = EncodecFeatureExtractor(feature_size=1, sampling_rate=synthetic.SAMPLE_RATE, padding_value=0.0)
    return MusicgenProcessor(feature_extractor=features, tokenizer=tokenizer)


def build_model(tokenizer: Any) -> Any:
    """A freshly initialised tiny MusicGen whose special ids are set."""
    from transformers import (EncodecConfig, MusicgenConfig, MusicgenDecoderConfig,
                              MusicgenForConditionalGeneration, T5Config)

    text = T5Config(vocab_size=len(tokenizer), d_model=64, d_kv=16, d_ff=128, num_layers=1, num_heads=4,
                    pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id, decoder_start_token_id=0)
    # bits per code log2(128) = 7 at 50 frames/s: 1.5 kbps gives 4 codebooks.
    codec = EncodecConfig(sampling_rate=synthetic.SAMPLE_RATE, audio_channels=1, num_filters=8, hidden_size=32,
                          codebook_dim=32, codebook_size=CODEBOOK_SIZE, upsampling_ratios=RATIOS, num_lstm_layers=1,
                          target_bandwidths=[1.5], use_causal_conv=True, normalize=False)
    decoder = MusicgenDecoderConfig(vocab_size=CODEBOOK_SIZE, hidden_size=96, num_hidden_layers=3,
                                    num_attention_heads=4, ffn_dim=256, num_codebooks=CODEBOOKS,
                                    max_position_embeddings=2048, pad_token_id=CODEBOOK_SIZE,
                                    bos_token_id=CODEBOOK_SIZE, decoder_start_token_id=CODEBOOK_SIZE)
    config = MusicgenConfig(text_encoder=text.to_dict(), audio_encoder=codec.to_dict(), decoder=decoder.to_dict())
    model = MusicgenForConditionalGeneration(config)
    assert model.decoder.num_codebooks == codec.num_quantizers == CODEBOOKS
    generation = model.generation_config
    generation.update(pad_token_id=CODEBOOK_SIZE, bos_token_id=CODEBOOK_SIZE, decoder_start_token_id=CODEBOOK_SIZE,
                      max_length=MAX_FRAMES + CODEBOOKS, do_sample=True, top_k=250, guidance_scale=3.0)
    return model


# -- the codec ----------------------------------------------------------------------


def spectral_loss(real: Any, fake: Any) -> Any:
    """L1 between log-magnitude spectrograms at three resolutions."""
    import torch

    loss = 0.0
    for n_fft in (256, 512, 1024):
        window = torch.hann_window(n_fft)
        spectra = [torch.stft(x, n_fft, n_fft // 4, window=window, return_complex=True).abs() for x in (real, fake)]
        loss = loss + (torch.log(spectra[0] + 1e-5) - torch.log(spectra[1] + 1e-5)).abs().mean()
    return loss


def _crops(pool: Any, batch: int, generator: Any) -> Any:
    import torch

    rows = torch.randint(0, pool.shape[0], (batch,), generator=generator)
    starts = torch.randint(0, pool.shape[1] - SEGMENT, (batch,), generator=generator)
    return torch.stack([pool[r, s : s + SEGMENT] for r, s in zip(rows.tolist(), starts.tolist())])[:, None]


def train_codec(codec: Any, pool: Any, steps: int, tune_steps: int, log: Any) -> None:
    """Autoencoder, then k-means codebooks, then decoder tuned on codes."""
    import torch

    generator = torch.Generator().manual_seed(SEED)

    def fit(parameters: list, steps: int, forward: Any, name: str) -> None:
        optimizer = torch.optim.Adam(parameters, lr=2e-3)
        schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: 1 - s / max(1, steps))
        for step in range(steps):
            real = _crops(pool, 16, generator)
            fake = forward(real)[..., : real.shape[-1]]
            loss = (real - fake).abs().mean() + spectral_loss(real[:, 0], fake[:, 0])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            schedule.step()
            if step % 100 == 0 or step == steps - 1:
                log(f"codec {name} step {step:5d}  loss {loss.item():.4f}")

    codec.train()
    fit([*codec.encoder.parameters(), *codec.decoder.parameters()], steps,
        lambda x: codec.decoder(codec.encoder(x)), "autoencoder")
    with torch.no_grad():
        latents = torch.cat([codec.encoder(_crops(pool, 64, generator)) for _ in range(8)])
    init_codebooks(codec.quantizer, latents.transpose(1, 2).reshape(-1, latents.shape[1]))

    def quantised(x):
        with torch.no_grad():
            z = codec.encoder(x)
            q = codec.quantizer.decode(codec.quantizer.encode(z))
        return codec.decoder(q)

    fit(list(codec.decoder.parameters()), tune_steps, quantised, "decoder on codes")
    codec.eval()


def init_codebooks(quantizer: Any, vectors: Any, iterations: int = 20) -> None:
    """k-means codebooks, layer by layer on the residual left by the layers before."""
    import torch

    generator = torch.Generator().manual_seed(SEED)
    residual = vectors.clone()
    for layer in quantizer.layers:
        book = layer.codebook
        centres = residual[torch.randperm(len(residual), generator=generator)[: book.codebook_size]].clone()
        for _ in range(iterations):
            nearest = torch.cdist(residual, centres).argmin(dim=1)
            for index in range(book.codebook_size):
                members = residual[nearest == index]
                # An empty cluster restarts at a random vector.
                centres[index] = members.mean(0) if len(members) else residual[torch.randint(len(residual), (1,), generator=generator)][0]
        book.embed.copy_(centres)
        book.embed_avg.copy_(centres)
        book.cluster_size.fill_(1.0)
        residual = residual - centres[torch.cdist(residual, centres).argmin(dim=1)]


# -- the language model -----------------------------------------------------------


def lm_data(model: Any, processor: Any, tracks: int, log: Any) -> dict[str, Any]:
    """Tokenised piano windows with descriptions, plus one row in ten again
    with the description masked out (the unconditional model)."""
    import numpy as np
    import torch

    from lorakit_music.codes import delay_labels, encode_windows
    from lorakit_music.data import Windowing, prepare_track

    rng = np.random.default_rng(SEED + 1)
    windowing = Windowing(WINDOW_SECONDS, synthetic.SAMPLE_RATE, 50)
    windows, texts = [], []
    for _ in range(tracks):
        audio, description = synthetic.render_track("piano", TRACK_SECONDS, rng)
        # Through the task's own preparation, so that users' tracks of this
        # style give the codes the base was trained on.
        prepared = prepare_track(audio, synthetic.SAMPLE_RATE, windowing)
        windows += list(prepared)
        texts += [description] * len(prepared)
    codes = encode_windows(model.audio_encoder, np.stack(windows), CODEBOOKS)
    log(f"pretraining data: {len(windows)} windows of {WINDOW_SECONDS} s from {tracks} piano tracks")
    labels = torch.stack([delay_labels(model.decoder, c) for c in codes])
    text = processor.tokenizer(texts, padding=True, return_tensors="pt")
    dropped = torch.arange(0, len(texts), 10)
    unconditional = torch.zeros_like(text.attention_mask[dropped])
    return {"input_ids": torch.cat([text.input_ids, text.input_ids[dropped]]),
            "attention_mask": torch.cat([text.attention_mask, unconditional]),
            "labels": torch.cat([labels, labels[dropped]])}


def build(out: Path, quick: bool = False, log: Any = print) -> Path:
    """Build, train and save the demo base into ``out`` (atomically)."""
    import numpy as np
    import torch

    from lorakit.api import atomic_dir, normalize_loudness, pretrain_on_tensors
    from lorakit_music.data import PREPARATION

    torch.manual_seed(SEED)
    started = time.time()
    processor = build_processor()
    model = build_model(processor.tokenizer)
    rng = np.random.default_rng(SEED + 2)
    pool_tracks = QUICK["tracks"] if quick else 48
    # Loudness-normalised as the task prepares tracks.
    pool = torch.from_numpy(np.stack([normalize_loudness(synthetic.render_track(synthetic.STYLES[i % 2], 4, rng)[0],
                                                         PREPARATION.target_dbfs) for i in range(pool_tracks)]))
    train_codec(model.audio_encoder, pool, QUICK["codec"] if quick else CODEC_STEPS,
                QUICK["tune"] if quick else TUNE_STEPS, log)
    for parameter in model.audio_encoder.parameters():
        parameter.requires_grad_(False)
    tracks = QUICK["tracks"] if quick else TRACKS
    data = lm_data(model, processor, tracks, log)
    steps = QUICK["lm"] if quick else LM_STEPS
    # The frozen codec gets no gradients, so the optimiser leaves it alone.
    pretrain_on_tensors(model, data, steps=steps, lr=2e-3, batch_size=16, seed=SEED, log=log)
    parameters = sum(p.numel() for p in model.parameters())
    with atomic_dir(Path(out), replace=True) as folder:
        model.save_pretrained(folder, safe_serialization=True)
        processor.save_pretrained(folder)
        (folder / "README.md").write_text(MODEL_CARD.format(parameters=parameters, codebooks=CODEBOOKS,
                                                            codebook_size=CODEBOOK_SIZE, steps=steps, tracks=tracks))
    log(f"saved {out} ({parameters:,} parameters) in {time.time() - started:.0f} s")
    return Path(out)


def main() -> None:
    parser = argparse.ArgumentParser(description="Build lorakit's tiny demo MusicGen.")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--quick", action="store_true", help="a few steps only (tests)")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    build(args.out, args.quick)


if __name__ == "__main__":
    main()
