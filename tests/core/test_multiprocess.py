import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def _two_processes(task: str, data: Path, out: Path, *flags: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
         str(REPO / "tests" / "ddp_toy.py"), task, "--data", str(data), "--output", str(out),
         "--epochs", "6", "--lr", "0.02", "--batch_size", "16", *flags],
        capture_output=True, text=True, timeout=300, env=env,
    )


@pytest.mark.slow
@pytest.mark.parametrize("task", ["toy", "toy-pair"])
def test_two_cpu_processes_train_one_adapter(task, toy_data, tmp_path):
    """Real multi-process training (gloo) on two CPU processes: each rank takes
    half the batches and both end with the same weights; with two optimizers
    (toy-pair, as a GAN has) too, where DDP's one-backward sync cannot serve."""
    out = tmp_path / "ddp"
    result = _two_processes(task, toy_data, out)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "2 processes" in result.stderr
    # 180 training examples = 12 batches of 16, 6 per rank per epoch.
    assert result.stdout.count("rank done: steps=36 total=36") == 2
    digests = re.findall(r"rank weights: (\w+)", result.stdout)
    assert len(digests) == 2 and digests[0] == digests[1], result.stdout
    report = json.loads((out / "report.json").read_text())
    assert report["test"]["adapter"]["mse"] < 0.3 * report["test"]["base"]["mse"]


@pytest.mark.slow
def test_every_process_follows_the_main_process_s_validation(toy_data, tmp_path):
    """Rank 1's own validation would get worse each time and stop it early
    (patience 1) while rank 0 goes on; both must take rank 0's decisions."""
    result = _two_processes("toy", toy_data, tmp_path / "ddp", "--train.metric", "mse", "--train.patience", "1",
                            "--rank_skew", "100")
    assert result.returncode == 0, result.stderr[-3000:]
    steps = re.findall(r"rank done: steps=(\d+)", result.stdout)
    assert len(steps) == 2 and steps[0] == steps[1], result.stdout
