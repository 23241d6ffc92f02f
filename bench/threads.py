"""lorakit's thread choice against torch's default, on an idle and on a busy machine.

    python bench/threads.py [--recipe caption-demo] [--steps 10] [--timeout 600]

Trains ``--steps`` steps of a demo recipe (``lorakit train RECIPE``) four
times, each in a fresh process: with lorakit's own thread choice and with
torch's default (one thread per usable core, forced through
``LORAKIT_THREADS``), first on the idle machine, then beside a busy process
(a torch matrix-multiply loop on every core, standing in for another
training). Prints the wall times and, per condition, the ratio
default / lorakit (above 1: lorakit's choice is faster). A run that passes
``--timeout`` is stopped and shown as ">TIMEOUT s".
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from lorakit.threads import usable_cores

BUSY = """
import torch
torch.set_num_threads({cores})
a = torch.randn(768, 768)
while True:
    a = torch.tanh(a @ a)
"""


def train(recipe: str, steps: int, out: Path, env: dict[str, str], timeout: float) -> tuple[float | None, str]:
    """Wall seconds of one training (or None past ``timeout``) and its thread line."""
    command = [sys.executable, "-m", "lorakit", "train", recipe, "--train.max_steps", str(steps),
               "--output", str(out), "--quiet"]
    started = time.perf_counter()
    try:
        done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return None, "?"
    seconds = time.perf_counter() - started
    if done.returncode:
        raise SystemExit(f"lorakit train failed:\n{done.stderr[-2000:]}")
    found = re.search(r"\d+ threads? \([^)]*\)", " ".join((done.stdout + done.stderr).split()))
    return seconds, found.group(0) if found else "?"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--recipe", default="caption-demo")
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--timeout", type=float, default=600.0)
    args = parser.parse_args()
    cores = usable_cores()
    base_env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "LORAKIT_THREADS", "MKL_NUM_THREADS")}
    modes = {"lorakit": base_env, "torch default": {**base_env, "LORAKIT_THREADS": str(cores)}}
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for condition in ("idle", "busy"):
            busy = None
            if condition == "busy":
                busy = subprocess.Popen([sys.executable, "-c", BUSY.format(cores=cores)])
                time.sleep(3)  # let it load the cores before lorakit looks
            try:
                times = {}
                for mode, env in modes.items():
                    out = Path(tmp) / f"{condition}-{mode.replace(' ', '-')}"
                    times[mode], threads = train(args.recipe, args.steps, out, env, args.timeout)
                    shown = f"{times[mode]:.1f}" if times[mode] is not None else f">{args.timeout:.0f}"
                    rows.append((condition, mode, threads, shown))
                    print(f"{condition:5s} {mode:14s} {threads:40s} {shown} s", flush=True)
            finally:
                if busy is not None:
                    busy.kill()
                    busy.wait()
            default, ours = times["torch default"], times["lorakit"]
            if ours is not None:
                ratio = f"{(default or args.timeout) / ours:.2f}" + ("+" if default is None else "")
                print(f"{condition}: torch default / lorakit = {ratio}", flush=True)
    print(f"\n{cores} usable cores, {args.recipe}, {args.steps} steps per run")


if __name__ == "__main__":
    main()
