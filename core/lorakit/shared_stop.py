"""Ctrl-C under several processes: every process stops after the same step.

A launcher (`torchrun`, `accelerate launch`) passes a Ctrl-C on to every
process, each of which is somewhere else in its step. Raised there, the
interrupt would leave one process saving a checkpoint through collectives
that the others never join (they wait in the step's gradient all-reduce):
the run hangs until the launcher kills it, losing every step since the last
periodic checkpoint. So under several processes the first Ctrl-C only asks
to stop; after each optimizer step the processes agree whether any of them
was asked, and then all save the same step together and stop. A second
Ctrl-C stops at once.
"""

from __future__ import annotations

import signal
import sys
import threading
from typing import Any


class SharedStop:
    """The stop request of one training loop (a context manager that holds
    the Ctrl-C handler); ``agreed()`` is the per-step decision."""

    def __init__(self, announce: bool):
        import torch.distributed as dist

        # The flag is reduced on the CPU through a gloo group of its own:
        # under NCCL a GPU tensor would make every step wait for the GPU.
        self._group = dist.new_group(backend="gloo")
        self._announce = announce
        self._asked = False
        self._previous: Any = None

    def __enter__(self) -> "SharedStop":
        if threading.current_thread() is threading.main_thread():  # signal handlers live there only
            self._previous = signal.signal(signal.SIGINT, self._ask)
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)
            self._previous = None

    def _ask(self, signum: int, frame: Any) -> None:
        if self._asked:
            raise KeyboardInterrupt
        self._asked = True
        if self._announce:  # plain writes: a signal handler must not wait for a lock the interrupted code holds
            sys.stderr.write("\nstopping after this step, with a checkpoint (Ctrl-C again stops at once, "
                             "losing the steps since the last checkpoint)\n")
            sys.stderr.flush()

    def agreed(self) -> bool:
        """Whether any process was asked to stop: the same answer on every process."""
        import torch
        import torch.distributed as dist

        flag = torch.tensor([int(self._asked)])
        dist.all_reduce(flag, op=dist.ReduceOp.MAX, group=self._group)
        return bool(flag.item())
