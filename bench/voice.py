"""Voice cloning speed: synthesis real-time factor and training seconds per step.

    python bench/voice.py [--steps 12] [--sentences 6]
    python bench/voice.py --piper RUN   # a run trained from a Piper voice

1. Synthesis RTF (seconds of compute per second of audio) of the base, the
   merged adapter and the unmerged adapter, each warmed up, then in rotating
   order on the same sentences, in at least 10 rounds (one round moves the
   ratio by about 5%).
   Goal: merged / base <= 1.02 (merging costs nothing at inference).
2. Training seconds per step of the lorakit loop (its defaults, gradient
   clipping included) vs a minimal hand-written GAN loop on the same model,
   batch, seed and data: discriminator step, then generator step, each with
   its own AdamW. Goal: hand / lorakit >= 0.95.
3. With ``--piper RUN`` instead: RUN exported with ``lorakit export --piper``,
   then piper-tts's RTF of the exported voice vs the original Piper voice,
   alternating on the same sentences (onnxruntime, the runtime Piper users
   run). Goal: exported / original within 1.00 +- 0.05.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "bench"))

from alternate import alternate, cpu_only, rotated, trainer_batches  # noqa: E402

SENTENCES = ["The ship left the harbour at dawn.", "Please call me back before noon.",
             "A quiet river runs past the old mill.", "We counted seven birds on the wire.",
             "Her garden is full of bright flowers.", "The train was late again today."]


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--speaker", default=str(REPO / "samples" / "voice" / "kauko"))
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--piper", metavar="RUN", help="only the Piper export RTF of this run (trained from piper:)")
    return parser.parse_args()


def fresh(task, seed: int = 0):
    """The demo base with fresh LoRA and the discriminator attached, seeded.
    The task's speaker slot must be chosen (``prepare_base``) beforehand."""
    from accelerate.utils import set_seed

    from lorakit.config import LoraSettings
    from lorakit.lora import inject

    base = task.load_base("demo")
    task.prepare_base(base, None)  # the slot is already a name: nothing is chosen again
    set_seed(seed)
    model = inject(base.model, LoraSettings(), task.lora_targets, ())
    task.prepare_training(base, model)
    return base, model


def rtf(task, base, model, texts: list[str]) -> float:
    """Seconds of synthesis per second of audio, over ``texts``."""
    compute, audio = 0.0, 0.0
    for text in texts:
        start = time.perf_counter()
        spoken = task.predict(base, model, [text])[0]
        compute += time.perf_counter() - start
        audio += len(spoken["audio"]) / spoken["sample_rate"]
    return compute / audio


def synthesis(task, adapter_dir: Path, texts: list[str], rounds: int) -> None:
    import torch

    from lorakit import runs
    from lorakit.merge import merge

    _, plain_base, unmerged, _, _ = runs.open_adapter(adapter_dir)
    _, merged_base, merged_peft, _, _ = runs.open_adapter(adapter_dir)
    merged = merge(merged_peft)
    base = task.load_base("demo")
    variants = {"base": (base, base.model), "merged": (merged_base, merged), "unmerged": (plain_base, unmerged)}
    results = {name: [] for name in variants}
    with torch.inference_mode():
        for variant_base, model in variants.values():  # warm-up of each
            rtf(task, variant_base, model, texts[:1])
        names = list(variants)
        for round_index in range(rounds):
            for name in rotated(names, round_index):
                results[name].append(rtf(task, *variants[name], texts))
            print(f"round {round_index}: " + ", ".join(f"{name} {results[name][-1]:.4f}" for name in names))
    median = {k: statistics.median(v) for k, v in results.items()}
    print(f"synthesis RTF: base {median['base']:.4f}, merged {median['merged']:.4f}, unmerged {median['unmerged']:.4f}")
    print(f"ratio merged / base: {median['merged'] / median['base']:.3f} (goal <= 1.02); "
          f"unmerged / base: {median['unmerged'] / median['base']:.3f}")


def piper_rtf(voice, texts: list[str]) -> float:
    """piper-tts's seconds of synthesis per second of audio, over ``texts``."""
    compute, audio = 0.0, 0.0
    for text in texts:
        start = time.perf_counter()
        samples = sum(len(chunk.audio_int16_array) for chunk in voice.synthesize(text))
        compute += time.perf_counter() - start
        audio += samples / voice.config.sample_rate
    return compute / audio


def piper_export(run: str, texts: list[str], rounds: int) -> None:
    import tempfile

    from piper import PiperVoice

    from lorakit import runs
    from lorakit.artifact import read_manifest, resolve_adapter_dir
    from lorakit_voice.base import PIPER_PREFIX
    from lorakit_voice.piper import resolve_voice

    base = read_manifest(resolve_adapter_dir(run)).base
    if not base.startswith(PIPER_PREFIX):
        raise SystemExit(f"{run} was trained from {base}, not a Piper voice")
    with tempfile.TemporaryDirectory() as folder:
        runs.export_merged(run, f"{folder}/voice", format="piper")
        original = PiperVoice.load(resolve_voice(base[len(PIPER_PREFIX):])[0])
        exported = PiperVoice.load(f"{folder}/voice/voice.onnx")
        piper_rtf(original, texts[:1])  # warm-up of both sessions
        piper_rtf(exported, texts[:1])
        results = {"original": [], "exported": []}
        for _ in range(rounds):
            results["original"].append(piper_rtf(original, texts))
            results["exported"].append(piper_rtf(exported, texts))
    median = {k: statistics.median(v) for k, v in results.items()}
    print(f"piper-tts RTF ({base}): original {median['original']:.4f}, exported {median['exported']:.4f}; "
          f"ratio exported / original {median['exported'] / median['original']:.3f} (goal 1.00 +- 0.05)")


def hand_loop(task, base, model, examples, steps: int, batch_size: int) -> float:
    import torch

    settings = task.optimizer_groups(base, model)
    groups = {name: group.params for name, group in settings.items()}
    optimizers = {name: torch.optim.AdamW(group.params, lr=group.lr or 2e-3, betas=group.betas or (0.9, 0.999))
                  for name, group in settings.items()}
    batches = trainer_batches(examples, batch_size, steps)  # the same batches as lorakit's loop
    model.train()
    start = time.perf_counter()
    for step in range(steps):
        batch = task.collate(base, batches[step])
        for name, loss in task.training_step(base, model, batch):
            loss.backward(inputs=groups[name])
            optimizers[name].step()
            optimizers[name].zero_grad(set_to_none=True)
    return (time.perf_counter() - start) / steps


def lorakit_loop(task, base, model, examples, steps: int, batch_size: int, accelerator) -> float:
    from lorakit.config import TrainSettings
    from lorakit.trainer import Trainer

    settings = TrainSettings(max_steps=steps, batch_size=batch_size, lr=2e-3)
    trainer = Trainer(task, base, model, examples, [], settings, accelerator, show_progress=False)
    start = time.perf_counter()
    trainer.fit()
    return (time.perf_counter() - start) / steps


def main() -> None:
    args = parse_args()
    import tempfile

    cpu_only()

    import torch

    torch.set_num_threads(args.threads)
    if args.piper:
        piper_export(args.piper, SENTENCES, max(args.rounds, 5))
        return
    from lorakit import runs
    from lorakit.device import describe, make_accelerator
    from lorakit.plugins import get_host

    task = get_host().task("voice-clone")()
    accelerator = make_accelerator("auto")
    base = task.load_base("demo")
    data = task.load_data(Path(args.speaker), base)
    task.prepare_base(base, data)  # chooses the speaker slot, as a run does
    examples = data.examples
    print(f"device: {describe(accelerator)}; {len(examples)} clips; batch 8; {args.steps} steps x {args.rounds} rounds")
    h, o = alternate(lambda: hand_loop(task, *fresh(task), examples, args.steps, 8),
                     lambda: lorakit_loop(task, *fresh(task), examples, args.steps, 8, accelerator),
                     args.rounds, "s/step", 3)
    print(f"training: hand-written {h:.3f} s/step, lorakit {o:.3f} s/step; ratio hand / lorakit {h / o:.3f} (goal >= 0.95)")
    with tempfile.TemporaryDirectory() as folder:
        config = runs.load_config("voice-clone", ["--speaker", args.speaker, "--base", "demo", "--output",
                                                  f"{folder}/run", "--train.max_steps", "5"])
        outcome = runs.run(config, show_progress=False, evaluate=False)
        synthesis(task, outcome.adapter_dir, SENTENCES, max(args.rounds, 10))  # cheap rounds; a round moves 5%


if __name__ == "__main__":
    main()
