"""Teaching a Piper voice's missing parts by the voice itself.

A Piper ONNX holds what inference runs; VITS training also needs the
posterior encoder (spectrogram -> latent z) and the duration predictor's
training half (``piper.TRAINING_ONLY``), which a loaded voice has freshly
initialised. Here the voice speaks sentences through the PyTorch model, with
its own noise; each utterance gives the latent z that its decoder turned into
the waveform, and the durations its duration predictor chose. Then:

* the posterior encoder learns to read that z back from the waveform's
  linear spectrogram: the Gaussian negative log-likelihood of z under
  q(z | spectrogram), which is what VITS training asks of it (the decoder
  renders z into exactly this waveform);
* the duration predictor's training half learns the chosen durations: the
  predictor's own NLL, as in VITS training.

Only these modules run backward; the decoder, the flow and a discriminator
never run, so it costs a fraction of a VITS training step.

A training run from a Piper base does this first (``ensure_warm``), once
per voice file and step count: the result is kept under lorakit's cache
(``piper-warm/``) and read back by later runs. A file made ahead of time,

    python -m lorakit_voice.piper_warmup --voice en_US-joe-medium --out FILE.safetensors

is used with ``--options.piper_warm_file FILE``.
"""

from __future__ import annotations

import argparse
import math
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from lorakit.api import (BaseModelError, atomic_write_bytes, cache_root, console, file_fingerprint, inference_device,
                         main_process_first, seeded)

#: Warm-up of a training run: steps of 8 utterances, each utterance seen
#: about ``EPOCHS`` times, out of at most ``RUN_SENTENCES`` sentences the
#: voice speaks (``HELD_OUT`` more are held out). On joe, 150 steps reach a
#: held-out NLL of 0.81 (0.76 after 400).
RUN_SENTENCES = 200
EPOCHS = 6
HELD_OUT = 20
#: Changes when the warm-up itself changes, so cached files of an older one are not read.
VERSION = "2"


@dataclass
class Utterance:
    """One sentence spoken by the voice: its ids, linear spectrogram
    [freq, frames], the latent z [channels, frames] its decoder rendered, and
    the frames each id lasted."""

    ids: Any
    spec: Any
    z: Any
    durations: Any


def speak_utterances(vits: Any, texts: Sequence[str], seed: int) -> list[Utterance]:
    """The voice's own utterances of ``texts``, with the noise scales it speaks with."""
    import torch
    from TTS.tts.models.vits import wav_to_spec

    audio = vits.config.audio
    device = next(vits.parameters()).device
    spoken = []
    with seeded(seed), torch.inference_mode():
        for text in texts:
            ids = torch.tensor([vits.tokenizer.text_to_ids(text)], device=device)
            aux = {"x_lengths": torch.tensor([ids.shape[1]], device=device), "speaker_ids": None,
                   "d_vectors": None, "language_ids": None}
            out = vits.inference(ids, aux_input=aux)
            wave = out["model_outputs"][:, 0]
            spec = wav_to_spec(wave, audio.fft_size, audio.hop_length, audio.win_length, center=False)[0]
            frames = min(spec.shape[-1], out["z"].shape[-1])
            spoken.append(Utterance(ids[0].cpu(), spec[:, :frames].cpu(), out["z"][0, :, :frames].cpu(),
                                    out["durations"][0, 0].cpu()))
    return spoken


def _batch(utterances: Sequence[Utterance]) -> dict[str, Any]:
    """Padded tensors of ``utterances`` (zeros past each length)."""
    import torch

    frames = torch.tensor([u.spec.shape[-1] for u in utterances])
    tokens = torch.tensor([len(u.ids) for u in utterances])
    size = len(utterances)
    spec = torch.zeros(size, utterances[0].spec.shape[0], int(frames.max()))
    z = torch.zeros(size, utterances[0].z.shape[0], int(frames.max()))
    ids = torch.zeros(size, int(tokens.max()), dtype=torch.long)
    durations = torch.zeros(size, 1, int(tokens.max()))
    for row, u in enumerate(utterances):
        spec[row, :, : frames[row]] = u.spec
        z[row, :, : frames[row]] = u.z
        ids[row, : tokens[row]] = u.ids
        durations[row, 0, : tokens[row]] = u.durations
    return {"spec": spec, "frames": frames, "z": z, "ids": ids, "tokens": tokens, "durations": durations}


def losses(vits: Any, batch: dict[str, Any]) -> dict[str, Any]:
    """The posterior's NLL of the spoken z (per value) and the duration
    predictor's NLL of the spoken durations (per id)."""
    import torch

    device = next(vits.parameters()).device
    batch = {key: value.to(device) for key, value in batch.items()}
    _, m_q, logs_q, mask = vits.posterior_encoder(batch["spec"], batch["frames"])
    squared = (batch["z"] - m_q) ** 2 * torch.exp(-2 * logs_q)
    nll = ((logs_q + 0.5 * squared + 0.5 * math.log(2 * math.pi)) * mask).sum() / (mask.sum() * m_q.shape[1])
    with torch.no_grad():
        x, _, _, x_mask = vits.text_encoder(batch["ids"], batch["tokens"])
    duration = vits.duration_predictor(x, x_mask, batch["durations"] * x_mask).sum() / x_mask.sum()
    return {"posterior": nll, "duration": duration}


def training_only_parameters(vits: Any) -> list[Any]:
    from lorakit_voice.piper import TRAINING_ONLY

    return [p for name in TRAINING_ONLY for p in vits.get_submodule(name).parameters()]


def warm_up(vits: Any, train: Sequence[Utterance], held_out: Sequence[Utterance], steps: int, batch_size: int = 8,
            lr: float = 2e-3, seed: int = 0, every: int = 50) -> list[dict[str, float]]:
    """Train the ``TRAINING_ONLY`` modules on ``train`` (every other weight
    frozen and left as it was); returns the held-out losses every ``every`` steps."""
    import torch

    trained = training_only_parameters(vits)
    trained_ids = {id(p) for p in trained}
    requires = {p: p.requires_grad for p in vits.parameters()}
    for p in vits.parameters():
        p.requires_grad_(id(p) in trained_ids)
    optimizer = torch.optim.AdamW(trained, lr=lr, weight_decay=0.0)
    warmup = max(1, steps // 20)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: min(1.0, (step + 1) / warmup) * 0.5 * (
        1 + math.cos(math.pi * min(step, steps) / steps)))
    order, rng, history = [], random.Random(seed), []
    vits.eval()  # no dropout in the frozen text encoder; the trained modules have none
    try:
        # The stochastic duration predictor draws noise: seeded, so that a voice
        # warms up to the same weights in every process (torch's own seed
        # differs from one process to the next).
        with seeded(seed, next(vits.parameters()).device):
            for step in range(1, steps + 1):
                if len(order) < batch_size:
                    order += rng.sample(range(len(train)), len(train))
                picked, order = order[:batch_size], order[batch_size:]
                terms = losses(vits, _batch([train[i] for i in picked]))
                optimizer.zero_grad(set_to_none=True)
                (terms["posterior"] + terms["duration"]).backward()
                torch.nn.utils.clip_grad_norm_(trained, 5.0)
                optimizer.step()
                schedule.step()
                if step % every == 0 or step == steps:
                    history.append({"step": step, **evaluate(vits, held_out)})
                    console.print(f"warm-up step {step}/{steps}: " + ", ".join(
                        f"held-out {k} {v:.3f}" for k, v in history[-1].items() if k != "step"))
    finally:
        for p, flag in requires.items():
            p.requires_grad_(flag)
    return history


def evaluate(vits: Any, utterances: Sequence[Utterance], batch_size: int = 8, seed: int = 0) -> dict[str, float]:
    """Mean held-out losses of ``utterances``. The duration predictor's noise
    is drawn from ``seed`` (and the caller's random state left as it was), so
    the losses depend on the weights alone: comparable from step to step and
    from one process to the next."""
    import torch

    totals: dict[str, float] = {}
    with torch.no_grad(), seeded(seed, next(vits.parameters()).device):
        for start in range(0, len(utterances), batch_size):
            chunk = utterances[start:start + batch_size]
            for name, value in losses(vits, _batch(chunk)).items():
                totals[name] = totals.get(name, 0.0) + float(value) * len(chunk)
    return {name: total / len(utterances) for name, total in totals.items()}


def make_warm(vits: Any, sentence_count: int, steps: int, batch_size: int = 8,
              lr: float = 2e-3) -> list[dict[str, float]]:
    """Warm the ``TRAINING_ONLY`` modules of ``vits`` up on its own speech of
    ``sentence_count`` sentences (plus ``HELD_OUT`` held out); returns the held-out history."""
    import time

    from lorakit_voice.synthetic import sentences

    started = time.perf_counter()
    spoken = speak_utterances(vits, sentences(sentence_count + HELD_OUT, seed=4242), seed=0)
    console.print(f"warm-up: {len(spoken)} utterances spoken in {time.perf_counter() - started:.0f} s")
    train, held_out = spoken[HELD_OUT:], spoken[:HELD_OUT]
    before = evaluate(vits, held_out)
    console.print("warm-up: before, " + ", ".join(f"held-out {k} {v:.3f}" for k, v in before.items()))
    return [{"step": 0, **before}] + warm_up(vits, train, held_out, steps, batch_size, lr)


def run_sentences(steps: int, batch_size: int = 8) -> int:
    """How many sentences a warm-up of ``steps`` steps has the voice speak."""
    return max(16, min(RUN_SENTENCES, steps * batch_size // EPOCHS))


def warm_state(vits: Any) -> dict[str, Any]:
    """The ``TRAINING_ONLY`` weights of ``vits`` in float16, keyed by full name."""
    import torch

    from lorakit_voice.piper import TRAINING_ONLY

    return {f"{name}.{key}": value.detach().to("cpu", torch.float16).contiguous()
            for name in TRAINING_ONLY for key, value in vits.get_submodule(name).state_dict().items()}


def save_warm(vits: Any, path: Path, onnx_path: Path, steps: int, history: list[dict[str, float]]) -> None:
    """Write the warmed-up modules to ``path`` (safetensors), tagged with the voice file they were made for."""
    import json

    from safetensors.torch import save

    metadata = {"onnx": onnx_path.name, "onnx_sha256": file_fingerprint(onnx_path), "steps": str(steps),
                "version": VERSION, "held_out": json.dumps(history[-1])}
    atomic_write_bytes(path, save(warm_state(vits), metadata=metadata))


def load_warm(vits: Any, path: Path, onnx_path: Path) -> None:
    """Load warmed-up modules from ``path`` into ``vits``, refusing a file
    made for another voice or another shape."""
    from safetensors import SafetensorError, safe_open

    from lorakit_voice.piper import TRAINING_ONLY

    fix = f"make one with python -m lorakit_voice.piper_warmup --voice {onnx_path} --out {path}"
    try:
        with safe_open(str(path), "pt") as handle:
            metadata = handle.metadata() or {}
            state = {key: handle.get_tensor(key) for key in handle.keys()}
    except (OSError, SafetensorError) as error:
        raise BaseModelError(f"{path} is not a readable warm-up file ({error}); {fix}") from None
    made_for = metadata.get("onnx_sha256")
    if made_for != file_fingerprint(onnx_path):
        raise BaseModelError(f"{path} was made for another voice ({metadata.get('onnx', '?')}, {made_for}), "
                             f"not {onnx_path}; {fix}")
    expected = {f"{name}.{key}": tuple(value.shape)
                for name in TRAINING_ONLY for key, value in vits.get_submodule(name).state_dict().items()}
    wrong = sorted(set(expected) ^ set(state)) or sorted(k for k in expected if expected[k] != tuple(state[k].shape))
    if wrong:
        raise BaseModelError(f"{path} does not fit {onnx_path} (first differing weight: {wrong[0]}); {fix}")
    for name in TRAINING_ONLY:
        module = vits.get_submodule(name)
        dtype = next(module.parameters()).dtype
        module.load_state_dict({key[len(name) + 1:]: value.to(dtype) for key, value in state.items()
                                if key.startswith(name + ".")}, strict=True)


def cached_warm_file(onnx_path: Path, steps: int) -> Path:
    """Where a run's warm-up of ``onnx_path`` is kept: one file per voice file content and step count."""
    digest = file_fingerprint(onnx_path).split(":")[-1][:16]
    return cache_root() / "piper-warm" / f"{onnx_path.stem}-{digest}-{steps}-v{VERSION}.safetensors"


def ensure_warm(vits: Any, onnx_path: Path, steps: int, file: Path | None = None) -> Path:
    """Give ``vits`` warmed-up ``TRAINING_ONLY`` modules: from ``file``, else
    from the cache, else by warming up now (``steps`` steps) and caching the
    result. Returns the file they came from."""
    if file is not None:
        load_warm(vits, file, onnx_path)
        console.print(f"posterior encoder: warmed-up weights from {file}")
        return file
    cached = cached_warm_file(onnx_path, steps)
    # Several processes: the main one warms up and caches, the others wait, then read its file.
    with main_process_first():
        if cached.is_file():
            load_warm(vits, cached, onnx_path)
            console.print(f"posterior encoder: warmed-up weights from the cache ({cached})")
            return cached
        console.print(f"posterior encoder: not in {onnx_path.name}; warming it up on the voice's own speech "
                      f"({steps} steps; once per voice, then read from lorakit's cache)")
        home = next(vits.parameters()).device
        vits.to(inference_device())  # the base is still on the CPU when a run warms it up
        try:
            history = make_warm(vits, run_sentences(steps), steps)
        finally:
            vits.to(home)
        save_warm(vits, cached, onnx_path, steps, history)
        load_warm(vits, cached, onnx_path)  # the run trains from exactly what later runs will read
        return cached


def main(argv: list[str] | None = None) -> None:
    import time

    from lorakit_voice.base import load_vits
    from lorakit_voice.piper import resolve_voice

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--voice", default="en_US-joe-medium", help="what follows piper: in --base")
    parser.add_argument("--out", type=Path, required=True, help="safetensors file of the warmed-up modules")
    parser.add_argument("--sentences", type=int, default=RUN_SENTENCES)
    parser.add_argument("--steps", type=int, default=400)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--lr", type=float, default=2e-3)
    args = parser.parse_args(argv)
    started = time.perf_counter()
    vits = load_vits(f"piper:{args.voice}").model.to(inference_device())
    onnx_path, _ = resolve_voice(args.voice)
    history = make_warm(vits, args.sentences, args.steps, args.batch, args.lr)
    save_warm(vits, args.out, onnx_path, args.steps, history)
    console.print(f"wrote {args.out} ({args.out.stat().st_size / 1e6:.1f} MB) in {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
