"""Device and precision: CUDA with bf16 (or fp16 + gradient scaler) autocast when there is a GPU, the CPU otherwise."""

from __future__ import annotations

import contextlib
import os
from typing import Any, Iterator

from lorakit.errors import ConfigError


def mixed_precision(precision: str, base_dtype: str = "fp32") -> str:
    """Resolve ``train.precision`` (auto/no/bf16/fp16) for this machine and
    the dtype the frozen base is held in."""
    import torch

    from lorakit.memory import autocast_for

    cuda = torch.cuda.is_available()
    precision = autocast_for(base_dtype, precision, cuda)
    if precision == "auto":
        # bf16 where the hardware has it; older GPUs (T4, V100) compute fp16
        # with a gradient scaler, the CPU in full precision.
        if not cuda:
            return "no"
        return "bf16" if native_bf16() else "fp16"
    if precision == "fp16" and not cuda:
        raise ConfigError("train.precision = 'fp16' needs a CUDA GPU; use auto, no or bf16 on a CPU")
    return precision


def native_bf16() -> bool:
    """bf16 in hardware (Ampere and later); T4 / V100 only emulate it, slowly,
    though ``torch.cuda.is_bf16_supported()`` says yes."""
    import torch

    return torch.cuda.is_available() and torch.cuda.is_bf16_supported(including_emulation=False)


def inference_device() -> Any:
    """Where predict, evaluate and export run a model: the GPU when there is one."""
    import torch

    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def make_accelerator(precision: str = "auto", base_dtype: str = "fp32") -> Any:
    """An ``accelerate.Accelerator`` for one process or many (``accelerate launch``)."""
    import torch
    from accelerate import Accelerator

    return Accelerator(mixed_precision=mixed_precision(precision, base_dtype), cpu=not torch.cuda.is_available())


def describe(accelerator: Any) -> str:
    """e.g. 'cuda:0, bf16, 1 process' or 'cpu, fp32, 1 process' for logs and benchmarks."""
    n = accelerator.num_processes
    precision = "fp32" if accelerator.mixed_precision == "no" else accelerator.mixed_precision
    return f"{accelerator.device}, {precision}, {n} process{'es' if n > 1 else ''}"


def launch_rank() -> int:
    """This process's rank in a run of several (torchrun and accelerate launch
    set RANK before any process group exists); 0 alone."""
    return int(os.environ.get("RANK", "0"))


@contextlib.contextmanager
def main_process_first() -> Iterator[None]:
    """In a run of several processes, the main process does the work first
    (reading and transcribing the data, warming a voice up: what it caches)
    and the others wait, then do it themselves from its cache. Should the main
    process fail, the others still go on and meet the same error themselves,
    so every process ends with the message rather than waiting for the main
    one. One process: nothing."""
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        yield
        return
    main = dist.get_rank() == 0
    if not main:
        dist.barrier()
    try:
        yield
    finally:
        if main:
            dist.barrier()
