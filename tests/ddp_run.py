"""Run any registered task under `torchrun` (one process per rank); used by the
multi-process tests.

The first argument is what `lorakit train` takes: a task name (a built-in one,
the example plugin's, or the test tasks toy / toy-pair, added here) or a recipe
name (caption-demo, voice-demo...); then the same run flags, plus ``--resume``
and ``--stop_after N`` (stop with a checkpoint after N steps, as an
interruption would). Each rank prints a digest of its trainable weights (LoRA
and every other module an optimizer trains, a GAN discriminator included)
after every optimizer step, then that of the weights it ended with and its
step counts, so a test can check that the ranks never diverge:

    rank 1 step 3 weights: 0123456789abcdef
    rank weights: 0123456789abcdef
    rank done: steps=4 total=4

and when each rank read its data (``rank 0 read data from T0 to T1``) and
wrote a checkpoint (``rank 0 saved step 9``).
"""

import hashlib
import os
import sys
import time
from pathlib import Path

import torch

torch.set_num_threads(1)
sys.path.insert(0, str(Path(__file__).parent))

import toy_plugin  # noqa: E402
from lorakit import runs  # noqa: E402
from lorakit.lora import trainable_state  # noqa: E402
from lorakit.plugins import get_host  # noqa: E402
from lorakit.trainer import Trainer  # noqa: E402


def digest(model) -> str:
    """A short hash of the trainable tensors, by name; bf16 and other dtypes
    numpy cannot hold are hashed as float32 (exact for any narrower float)."""
    state = trainable_state(model)
    chunks = []
    for name in sorted(state):
        chunks.append(name.encode())
        chunks.append(state[name].float().numpy().tobytes())
    return hashlib.sha256(b"".join(chunks)).hexdigest()[:16]


def say(line: str) -> None:
    """One write per line: the ranks share one pipe, and with PYTHONUNBUFFERED
    set print's separate newline can land inside the other rank's line."""
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


fit, after_step, save_last = Trainer.fit, Trainer._after_step, Trainer._save_last


def fit_and_digest(self, *args, **kwargs):
    result = fit(self, *args, **kwargs)
    say(f"rank weights: {digest(self.unwrapped)}")
    return result


def step_and_digest(self, state, *args, **kwargs):
    stop = after_step(self, state, *args, **kwargs)
    say(f"rank {self.accelerator.process_index} step {state['step']} weights: {digest(self.unwrapped)}")
    return stop


def save_and_say(self, state, *args, **kwargs):
    save_last(self, state, *args, **kwargs)
    say(f"rank {self.accelerator.process_index} saved step {state['step']}")


load_splits = runs.load_splits


def timed_load_splits(*args, **kwargs):
    """Reading the data, taking ``DDP_RUN_DATA_SECONDS`` longer, said with its start and end."""
    started = time.time()
    splits = load_splits(*args, **kwargs)
    time.sleep(float(os.environ.get("DDP_RUN_DATA_SECONDS", "0")))
    say(f"rank {os.environ.get('RANK', '0')} read data from {started:.3f} to {time.time():.3f}")
    return splits


Trainer.fit, Trainer._after_step, Trainer._save_last = fit_and_digest, step_and_digest, save_and_say
runs.load_splits = timed_load_splits
get_host().add_plugin(toy_plugin, "toy-tests")
flags = sys.argv[2:]
resume = "--resume" in flags
flags = [f for f in flags if f != "--resume"]
stop_after = None
if "--stop_after" in flags:
    at = flags.index("--stop_after")
    stop_after = int(flags[at + 1])
    del flags[at : at + 2]
outcome = runs.run(runs.load_config(sys.argv[1], flags), resume=resume, stop_after=stop_after, show_progress=False)
say(f"rank done: steps={outcome.train.steps} total={outcome.train.total_steps}")
