import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_two_cpu_processes_train_one_adapter(toy_data, tmp_path):
    """Real DDP (gloo) on two CPU processes: each rank takes half the batches."""
    out = tmp_path / "ddp"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
         str(REPO / "tests" / "ddp_toy.py"), "--data", str(toy_data), "--output", str(out),
         "--epochs", "6", "--lr", "0.02", "--batch_size", "16"],
        capture_output=True, text=True, timeout=300, env=env,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "2 processes" in result.stderr
    # 180 training examples = 12 batches of 16, 6 per rank per epoch.
    assert result.stdout.count("rank done: steps=36 total=36") == 2
    report = json.loads((out / "report.json").read_text())
    assert report["test"]["adapter"]["mse"] < 0.3 * report["test"]["base"]["mse"]
