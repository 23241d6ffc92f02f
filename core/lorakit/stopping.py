"""Stopping a training run from outside: Ctrl-C (SIGINT) and SIGTERM (`kill`,
a cluster taking its machine back) both save the run for --resume.

One process saves at once, wherever the signal lands (``KeyboardInterrupt``
and the trainer's resume point). Several processes cannot: a launcher
(`torchrun`, `accelerate launch`) passes the signal on to every process,
each of which is somewhere else in its step, and one saving through
collectives that the others never join (they wait in the step's gradient
all-reduce) hangs the run until the launcher kills it, losing every step
since the last periodic checkpoint. So there the first signal only asks to
stop; after each optimizer step the processes agree whether any of them was
asked, and then all save that step together and stop. A second signal stops
at once.
"""

from __future__ import annotations

import contextlib
import signal
import sys
import threading
from typing import Any, Callable, Iterator

SIGNALS = (signal.SIGINT, signal.SIGTERM)


@contextlib.contextmanager
def _handling(handler: Callable[[int, Any], None]) -> Iterator[None]:
    """``handler`` for both signals while the block runs (in the main thread
    only: signal handlers live there), except one ignored (a shell starts
    background jobs ignoring SIGINT); the old handlers back after it."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {number: signal.signal(number, handler) for number in SIGNALS
                if signal.getsignal(number) is not signal.SIG_IGN}
    try:
        yield
    finally:
        for number, old in previous.items():
            signal.signal(number, old)


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def stop_signals_interrupt() -> contextlib.AbstractContextManager[None]:
    """One process: SIGTERM interrupts the run as Ctrl-C does (and saves it)."""
    return _handling(_interrupt)


class SharedStop:
    """The stop request of one training loop under several processes (a
    context manager holding the signal handlers); ``agreed()`` is the
    per-step decision."""

    def __init__(self, announce: bool):
        import torch.distributed as dist

        # The flag is reduced on the CPU through a gloo group of its own:
        # under NCCL a GPU tensor would make every step wait for the GPU.
        self._group = dist.new_group(backend="gloo")
        self._announce = announce
        self._asked = False
        self._handlers: contextlib.AbstractContextManager[None] | None = None

    def __enter__(self) -> "SharedStop":
        self._handlers = _handling(self._ask)
        self._handlers.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._handlers.__exit__(*exc)

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
