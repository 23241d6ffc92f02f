"""Run the toy task under `torchrun` (one process per rank); used by test_multiprocess."""

import sys
from pathlib import Path

import torch

torch.set_num_threads(1)
sys.path.insert(0, str(Path(__file__).parent))

import toy_plugin  # noqa: E402
from lorakit import runs  # noqa: E402
from lorakit.plugins import get_host  # noqa: E402

get_host().add_plugin(toy_plugin, "toy-tests")
outcome = runs.run(runs.load_config("toy", sys.argv[1:]), show_progress=False)
print(f"rank done: steps={outcome.train.steps} total={outcome.train.total_steps}")
