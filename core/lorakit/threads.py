"""How many CPU threads torch computes with: chosen from the cores this
process may really use, not from the machine's core count.

torch's default is one thread per core of the machine. Where anything else
runs (another training, a test suite, a browser), threads that wait for each
other at every operation make a run many times slower: on two cores shared
with another job, 15-55x (``bench/threads.py`` measures it). So lorakit takes
the cores this process may use (its CPU affinity, a container's CPU quota),
leaves out those other processes keep busy right now (``/proc/stat`` sampled
for a fifth of a second), and divides the rest among the processes of a
multi-process run.

In order: ``--threads N`` (``train.threads``), then ``LORAKIT_THREADS``,
then ``OMP_NUM_THREADS`` (torch reads it itself), then that choice.
DataLoader workers are ``train.num_workers`` (none on a CPU by default: they
would take cores from the step).
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass
from pathlib import Path

from lorakit.errors import ConfigError

ENV = "LORAKIT_THREADS"
#: How long the other processes' CPU use is sampled.
SAMPLE_SECONDS = 0.2


@dataclass(frozen=True)
class ThreadChoice:
    """The intra-op thread count and why, for the device line."""

    threads: int
    why: str

    def describe(self) -> str:
        return f"{self.threads} thread{'s' if self.threads > 1 else ''} ({self.why})"


def choose(requested: int | None = None, processes: int | None = None) -> ThreadChoice:
    """The thread count for one of ``processes`` processes on this machine
    (default: ``WORLD_SIZE``, as torchrun and accelerate set it)."""
    processes = processes or int(os.environ.get("WORLD_SIZE") or 1)
    if requested is not None:
        return ThreadChoice(requested, "--threads")
    if os.environ.get(ENV):
        try:
            value = int(os.environ[ENV])
        except ValueError:
            value = 0
        if value < 1:
            raise ConfigError(f"{ENV}={os.environ[ENV]!r} is not a thread count; set a whole number >= 1 or unset it")
        return ThreadChoice(value, ENV)
    if os.environ.get("OMP_NUM_THREADS"):
        import torch

        return ThreadChoice(torch.get_num_threads(), "OMP_NUM_THREADS")
    cores = usable_cores()
    busy = busy_cores()
    free = max(1, cores - math.floor(busy + 0.5))
    threads = max(1, free // max(1, processes))
    return ThreadChoice(threads, f"{cores} usable core{'s' if cores > 1 else ''}, {busy:.1f} busy with other work")


def configure(requested: int | None = None, processes: int | None = None) -> ThreadChoice:
    """Choose the thread count and set it; returns the choice."""
    choice = choose(requested, processes)
    apply(choice)
    return choice


def apply(choice: ThreadChoice) -> None:
    """Set torch's intra-op threads (inter-op stays torch's: eager code barely uses it)."""
    import torch

    if torch.get_num_threads() != choice.threads:
        torch.set_num_threads(choice.threads)


def usable_cores() -> int:
    """Cores this process may run on: its affinity, capped by a cgroup CPU quota."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cores = os.cpu_count() or 1
    quota = _cgroup_quota()
    return max(1, min(cores, quota) if quota else cores)


def _cgroup_quota() -> int | None:
    """Whole CPUs a cgroup v2 quota allows (``cpu.max``: "200000 100000" = 2), or None."""
    try:
        limit, period = Path("/sys/fs/cgroup/cpu.max").read_text().split()[:2]
    except (OSError, ValueError):
        return None
    if limit == "max":
        return None
    return max(1, math.floor(int(limit) / int(period)))


def busy_cores() -> float:
    """How many of this process's cores other processes keep busy now: the
    non-idle share of those cores over ``SAMPLE_SECONDS`` (this process
    sleeps meanwhile); the 1-minute load average where /proc is missing (macOS),
    and 0 where that is too (Windows)."""
    try:
        cpus = os.sched_getaffinity(0)
    except AttributeError:
        cpus = None
    first = _cpu_times(cpus)
    if first is None:
        try:
            return float(os.getloadavg()[0])
        except (OSError, AttributeError):  # Windows has no load average either
            return 0.0
    time.sleep(SAMPLE_SECONDS)
    second = _cpu_times(cpus)
    busy = 0.0
    for cpu, (idle, total) in second.items():
        before = first.get(cpu)
        if before is None or total <= before[1]:
            continue
        busy += 1.0 - (idle - before[0]) / (total - before[1])
    return max(0.0, busy)


def _cpu_times(cpus: set[int] | None) -> dict[int, tuple[int, int]] | None:
    """``{cpu: (idle ticks, total ticks)}`` of ``cpus`` from /proc/stat."""
    try:
        lines = Path("/proc/stat").read_text().splitlines()
    except OSError:
        return None
    times = {}
    for line in lines:
        name, *fields = line.split()
        if not name.startswith("cpu") or name == "cpu":
            continue
        cpu = int(name[3:])
        if cpus is not None and cpu not in cpus:
            continue
        ticks = [int(f) for f in fields[:8]]  # user nice system idle iowait irq softirq steal
        times[cpu] = (ticks[3] + ticks[4], sum(ticks))
    return times or None
