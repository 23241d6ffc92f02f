"""Measuring a run's peak training memory: a few steps of the real training
loop in a fresh process, what ``lorakit plan`` is checked against.

The process builds the model exactly as a run does (``runs.training_model``)
and trains it with the run's ``Trainer`` for a few optimizer steps, without
validation or checkpoints. On the CPU two peaks are sampled every millisecond
during training, each counted from what the process held after its imports,
before the base was loaded: the bytes malloc has handed out (tensors, and
everything else; the CPU's counterpart of torch's allocated GPU memory,
which is what a plan predicts) plus weights read straight from mapped
safetensors files, and the resident memory, which is more: glibc keeps
freed memory for reuse, and fragments it. On a CUDA GPU the peak is
torch's peak of allocated GPU memory.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib
import json
import os
import subprocess
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

from lorakit.config import RunConfig
from lorakit.errors import LorakitError, TrainingError

#: Optimizer steps measured: the second and later hold AdamW's states.
STEPS = 3


@dataclass
class Measured:
    #: Peak bytes allocated: malloc'd on the CPU, torch's allocated memory on a GPU.
    peak: int
    #: Peak resident memory of the process, over its baseline (the CPU: allocator slack included).
    resident: int
    device: str
    steps: int
    batch_size: int


def measure(config: RunConfig, steps: int = STEPS, plugins: Sequence[str] = (),
            timeout: float | None = None) -> Measured:
    """The peak memory of ``steps`` optimizer steps of ``config``, in a fresh
    process. ``plugins`` are modules to register there besides the installed
    plugins (a test's own task), importable from this process's ``sys.path``."""
    payload = json.dumps({"config": config.to_dict(), "steps": steps, "plugins": list(plugins)})
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    done = subprocess.run([sys.executable, "-m", "lorakit.peak"], input=payload, capture_output=True, text=True,
                          timeout=timeout, env=env)
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode != 0 or not lines:
        tail = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no output"]
        raise TrainingError(f"the measured training run failed (exit {done.returncode}): {tail[0]}")
    return Measured(**json.loads(lines[-1]))


class _Peaks:
    """The highest resident and allocated bytes (see ``now``) seen by a
    thread sampling them every millisecond."""

    def __init__(self):
        import psutil

        self._process = psutil.Process()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self.resident = self.allocated = 0

    def now(self) -> tuple[int, int]:
        """(resident, allocated): allocated is what malloc has handed out
        (the resident size where there is no glibc to ask)."""
        resident = self._process.memory_info().rss
        in_use = _malloc_in_use()
        return resident, resident if in_use is None else in_use

    def mapped_files(self) -> int:
        """Resident pages of mapped data files, such as weights read straight
        from a safetensors file, which malloc never sees (0 where ``now``
        counts them as resident). Shared libraries are left out."""
        if _malloc_in_use() is None:
            return 0
        return sum(m.rss for m in self._process.memory_maps(grouped=True)
                   if m.path.startswith("/") and ".so" not in Path(m.path).name)

    def _sample(self) -> None:
        while not self._stop.is_set():
            resident, allocated = self.now()
            self.resident, self.allocated = max(self.resident, resident), max(self.allocated, allocated)
            self._stop.wait(0.001)

    def __enter__(self) -> "_Peaks":
        self.resident, self.allocated = self.now()
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        self._thread.join()


def _malloc_in_use() -> int | None:
    """Bytes glibc's malloc has handed out and not yet taken back (what CPU
    tensors, and everything else, hold); None where there is no glibc."""
    mallinfo2 = _mallinfo2()
    if mallinfo2 is None:
        return None
    info = mallinfo2()
    return info.uordblks + info.hblkhd  # in use in the heap + in mmapped chunks


@functools.lru_cache(maxsize=None)
def _glibc() -> Any:
    """The C library where it is glibc (Linux), else None."""
    import ctypes
    import ctypes.util

    name = ctypes.util.find_library("c") if sys.platform.startswith("linux") else None
    libc = ctypes.CDLL(name) if name else None
    return libc if libc is not None and hasattr(libc, "mallinfo2") else None


@functools.lru_cache(maxsize=None)
def _mallinfo2() -> Any:
    import ctypes

    libc = _glibc()
    if libc is None:
        return None

    class MallInfo2(ctypes.Structure):
        _fields_ = [(field, ctypes.c_size_t) for field in
                    ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks",
                     "keepcost")]

    libc.mallinfo2.restype = MallInfo2
    return libc.mallinfo2


def _release_free_memory() -> None:
    """Give memory freed while loading back to the system (glibc keeps it
    otherwise), so the training peak is not hidden under it."""
    import gc

    gc.collect()
    if _glibc() is not None:
        _glibc().malloc_trim(0)


def peak_of(warm: Callable[[], Any], build: Callable[[], Callable[[], Any]], cuda: bool = False) -> dict[str, int]:
    """The peak memory of ``build()()`` counted from before ``build``: ``warm``
    first imports what it needs (its result is dropped), so that the
    baseline holds the libraries but no model; ``build`` makes the model and
    returns the training to measure."""
    import torch

    import peft  # noqa: F401  (imported by every run; its modules are not the run's memory)

    meter = _Peaks()
    warm()
    _release_free_memory()
    resident, allocated = meter.now()
    mapped = meter.mapped_files()
    train = build()
    _release_free_memory()
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    with meter:
        train()
    # Weights read straight from a mapped file are paged in as they are first
    # used, and stay: all of them are in by the end (libraries are left out).
    mapped = meter.mapped_files() - mapped
    peak = torch.cuda.max_memory_allocated() if cuda else meter.allocated - allocated + mapped
    return {"peak": int(peak), "resident": int(meter.resident - resident)}


def _train(config: RunConfig, steps: int) -> dict[str, Any]:
    """A few optimizer steps of the run's own loop, without validation or checkpoints."""
    from lorakit.capabilities import SeveralOptimizers
    from lorakit.device import make_accelerator
    from lorakit.runs import make_task, training_model
    from lorakit.trainer import Trainer

    task = make_task(config)
    accelerator = make_accelerator(config.train.precision, config.base_dtype)
    settings = dataclasses.replace(config.train, max_steps=steps, eval_every=0, save_every=0, patience=None,
                                   metric="val_loss")

    def build() -> Callable[[], Any]:
        made = training_model(task, config)
        if isinstance(task, SeveralOptimizers):
            task.prepare_training(made.base, made.model)
        trainer = Trainer(task, made.base, made.model, made.splits.train, [], settings, accelerator,
                          replay_pool=made.splits.replay_pool, replay=config.data.replay, show_progress=False)
        return trainer.fit

    cuda = accelerator.device.type == "cuda"
    peaks = peak_of(lambda: task.load_base(config.base), build, cuda)
    return {**peaks, "device": accelerator.device.type, "steps": steps, "batch_size": settings.batch_size}


def main() -> None:
    from lorakit.config import build
    from lorakit.plugins import get_host

    request = json.loads(sys.stdin.read())
    for name in request.get("plugins", []):
        get_host().add_plugin(importlib.import_module(name), name)
    try:
        result = _train(build(RunConfig, request["config"]), int(request["steps"]))
    except LorakitError as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(1)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
