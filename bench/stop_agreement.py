"""What the per-step stop agreement of a multi-process run costs, next to the
gradient all-reduce every step already pays.

    python -m torch.distributed.run --standalone --nproc_per_node 2 bench/stop_agreement.py [--mb 4]

Under several processes the trainer all-reduces one number on the CPU after
each optimizer step (``lorakit.stopping.SharedStop.agreed``: did any process
get Ctrl-C or SIGTERM?). Alternating rounds in one run, rank 0 prints the
time of one agreement, of one all-reduce of ``--mb`` MB of gradients (a
BLIP-base LoRA r=8 on q/v holds about 2 MB; DDP sends them every step) and
their ratio.
"""

from __future__ import annotations

import argparse
import statistics
import time


def timed(call, repeats: int) -> float:
    started = time.perf_counter()
    for _ in range(repeats):
        call()
    return (time.perf_counter() - started) / repeats


def main() -> None:
    import torch
    import torch.distributed as dist

    from lorakit.stopping import SharedStop

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=float, default=4.0)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    torch.set_num_threads(1)
    dist.init_process_group("gloo")
    stop = SharedStop(announce=False)
    gradients = torch.zeros(int(args.mb * 2**20 / 4))
    agreement, reduction = [], []
    for _ in range(args.rounds):
        agreement.append(timed(stop.agreed, 500))
        reduction.append(timed(lambda: dist.all_reduce(gradients), 20))
    if dist.get_rank() == 0:
        agree, reduce = statistics.median(agreement), statistics.median(reduction)
        print(f"{dist.get_world_size()} processes (gloo, CPU): stop agreement {agree * 1e6:.0f} us, "
              f"all-reduce of {args.mb:g} MB {reduce * 1e6:.0f} us; agreement / gradient all-reduce = {agree / reduce:.3f}")
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
