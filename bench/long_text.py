"""Speaking a long text: whole in one VITS pass vs sentence by sentence (what `lorakit predict` and `lorakit serve` do).

    python bench/long_text.py [--base demo|FOLDER] [--chars 1000,4000]

For each text length (4,000 characters is about what an OpenAI speech client
may send in one request: its limit is 4,096), the same text is spoken both
ways, each in a fresh process of this script (in one process, buffers kept
from a first synthesis hide the second one's memory), and the script prints
the peak memory allocated during synthesis (over what the process held with
the base loaded; see ``lorakit/peak.py``) and the seconds each took. Goal: the
sentence-by-sentence peak does not grow with the text (the whole-text peak
grows with it), at no loss of speed. ``--base`` a VCTK-size VITS built by
``bench/real_size.py`` shows the same at real size.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", default="demo")
    parser.add_argument("--chars", default="1000,4000", help="text lengths, comma-separated")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--one", metavar="CHARS:WAY", help=argparse.SUPPRESS)  # one measurement, as JSON
    return parser.parse_args()


def text_of(chars: int) -> str:
    """Sentences of the sample speaker's kind, cut to ``chars`` at a sentence end."""
    from lorakit_voice.synthetic import sentences

    text = ""
    for sentence in sentences(400, seed=3):
        if len(text) + len(sentence) + 2 > chars:
            break
        text += sentence.capitalize() + ". "
    return text.strip()


def measure(speak) -> tuple[float, float, float]:
    """(peak MB allocated, seconds, seconds of audio) of ``speak()``."""
    from lorakit.peak import peak_of

    result = {}

    def timed():
        started = time.perf_counter()
        result["audio"] = speak()
        result["seconds"] = time.perf_counter() - started

    peak = peak_of(lambda: None, lambda: timed)["peak"]
    return peak / 2**20, result["seconds"], len(result["audio"])


def speak_once(args: argparse.Namespace) -> dict:
    """One measurement (``--one CHARS:WAY``) in this process."""
    import torch

    torch.set_num_threads(args.threads)
    from lorakit_voice.synthesis import Voicing, synthesize, synthesize_sentences
    from lorakit_voice.task import VoiceCloneTask

    chars, way = args.one.split(":")
    base = VoiceCloneTask().load_base(args.base)
    voicing = Voicing(speaker_id=0 if base.model.num_speakers > 1 else None)
    text = text_of(int(chars))
    if way == "by sentence":
        from lorakit_voice.sentences import split_sentences

        sentences = split_sentences(text)
        peak, seconds, samples = measure(lambda: synthesize_sentences(base.model, sentences, voicing))
    else:
        peak, seconds, samples = measure(lambda: synthesize(base.model, text, voicing))
    return {"chars": len(text), "peak": peak, "seconds": seconds,
            "audio": samples / int(base.model.config.audio.sample_rate), "threads": torch.get_num_threads()}


def main() -> None:
    args = parse_args()
    if args.one:
        print(json.dumps(speak_once(args)))
        return
    rows = {}
    for chars in (int(c) for c in args.chars.split(",")):
        for way in ("whole", "by sentence"):
            command = [sys.executable, __file__, "--base", args.base, "--threads", str(args.threads),
                       "--one", f"{chars}:{way}"]
            done = subprocess.run(command, capture_output=True, text=True, check=True)
            row = rows[chars, way] = json.loads(done.stdout.strip().splitlines()[-1])
            if len(rows) == 1:
                print(f"base {args.base}, cpu fp32, {row['threads']} threads, a fresh process per line")
                print(f"{'chars':>6} {'way':<12} {'peak MB':>9} {'seconds':>8} {'audio s':>8}")
            print(f"{row['chars']:>6} {way:<12} {row['peak']:>9.0f} {row['seconds']:>8.1f} {row['audio']:>8.1f}")
    lengths = sorted({c for c, _ in rows})
    for chars in lengths:
        whole, split = rows[chars, "whole"], rows[chars, "by sentence"]
        print(f"{chars} chars: peak by sentence / whole {split['peak'] / whole['peak']:.3f}, "
              f"time by sentence / whole {split['seconds'] / whole['seconds']:.3f}")
    if len(lengths) > 1:
        short, long = lengths[0], lengths[-1]
        growth = {way: rows[long, way]["peak"] / rows[short, way]["peak"] for way in ("whole", "by sentence")}
        print(f"peak growth {short} -> {long} chars: whole x{growth['whole']:.2f}, "
              f"by sentence x{growth['by sentence']:.2f}")


if __name__ == "__main__":
    main()
