"""Run under `torchrun` (two gloo CPU processes) by test_piper_ranks.py: each
rank readies the Piper voice joe as a training run would, then prints how
many warm-ups it made and a digest of the warmed-up weights it holds:

    rank 0 warm-ups 1 digest 0123456789abcdef
"""

import hashlib

import torch

torch.set_num_threads(1)

from accelerate import PartialState  # noqa: E402
from lorakit_voice import piper_warmup  # noqa: E402
from lorakit_voice.base import load_vits  # noqa: E402
from lorakit_voice.piper import resolve_voice  # noqa: E402

VOICE = "en_US-joe-medium"

state = PartialState(cpu=True)  # the process group, as a run's accelerator makes it
piper_warmup.run_sentences = lambda steps: 4  # a tiny warm-up: what is tested is who makes it
piper_warmup.HELD_OUT = 2
made = []
warm = piper_warmup.make_warm


def counted(*args, **kwargs):
    made.append(1)
    return warm(*args, **kwargs)


piper_warmup.make_warm = counted
vits = load_vits(f"piper:{VOICE}").model
onnx_path, _ = resolve_voice(VOICE)
piper_warmup.ensure_warm(vits, onnx_path, steps=3)
weights = piper_warmup.warm_state(vits)
digest = hashlib.sha256(b"".join(weights[k].numpy().tobytes() for k in sorted(weights))).hexdigest()[:16]
print(f"rank {state.process_index} warm-ups {len(made)} digest {digest}", flush=True)
