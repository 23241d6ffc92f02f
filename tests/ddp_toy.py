"""Run a toy task under `torchrun` (one process per rank); used by test_multiprocess.

The first argument is the task (toy, or toy-pair with two optimizers); each
rank prints its step counts and a digest of the LoRA weights it ended with.
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
    print(f"rank weights: {digest}")
    return result


Trainer.fit = fit_and_digest
get_host().add_plugin(toy_plugin, "toy-tests")
outcome = runs.run(runs.load_config(sys.argv[1], sys.argv[2:]), show_progress=False)
print(f"rank done: steps={outcome.train.steps} total={outcome.train.total_steps}")
