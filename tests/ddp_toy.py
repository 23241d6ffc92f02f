"""Run a toy task under `torchrun` (one process per rank); used by test_multiprocess.

The first argument is the task (toy, or toy-pair with two optimizers), then
run flags, plus ``--resume`` and ``--stop_after N`` (stop with a checkpoint
after N steps, as an interruption would). Each rank prints its step counts
and a digest of the LoRA weights it ended with.
"""

import hashlib
import sys
from pathlib import Path

import torch

torch.set_num_threads(1)
sys.path.insert(0, str(Path(__file__).parent))

import toy_plugin  # noqa: E402
from lorakit import runs  # noqa: E402
from lorakit.plugins import get_host  # noqa: E402

from lorakit.lora import trainable_state  # noqa: E402
from lorakit.trainer import Trainer  # noqa: E402

fit = Trainer.fit


def fit_and_digest(self, *args, **kwargs):
    result = fit(self, *args, **kwargs)
    state = trainable_state(self.unwrapped)
    digest = hashlib.sha256(b"".join(state[k].numpy().tobytes() for k in sorted(state))).hexdigest()[:16]
    print(f"rank weights: {digest}", flush=True)
    return result


Trainer.fit = fit_and_digest
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
print(f"rank done: steps={outcome.train.steps} total={outcome.train.total_steps}")
