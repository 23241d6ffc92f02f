"""The voice demo through lorakit's own loop: the adapter moves the voice to
the sample speaker, and the artifact works with stock peft and with coqui."""

import json
import math

import numpy as np
import pytest
import soundfile
import torch
from click.testing import CliRunner
from voice_speakers import SAMPLES

from lorakit import runs
from lorakit.cli import cli
from lorakit_voice import synthetic

SPEAKER = SAMPLES / synthetic.SAMPLE_VOICE.name
TEXTS = ["the old man opened the wooden door.", "where is the blue car?"]

# The main job on the demo, trained once for the module: minutes of GAN steps.
pytestmark = [pytest.mark.slow, pytest.mark.alone]


@pytest.fixture(scope="module")
def voice_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("voice") / "run"
    config = runs.load_config("voice-clone", ["--speaker", str(SPEAKER), "--base", "demo", "--output", str(out)])
    return runs.run(config, show_progress=False)


def test_adapter_moves_the_voice_to_the_speaker(voice_run):
    test = voice_run.report["test"]
    base, adapter = test["base"], test["adapter"]
    assert adapter["speaker_similarity"] >= base["speaker_similarity"] + 0.1
    # Closer to the target than to the base voice it started from.
    assert adapter["speaker_similarity"] > adapter["base_voice_similarity"]
    assert adapter["mcd"] < base["mcd"]
    assert (voice_run.run_dir / "samples" / "adapter" / "01.wav").is_file()
    assert (voice_run.run_dir / "samples" / "base" / "01.png").is_file()
    said = (voice_run.run_dir / "samples" / "adapter" / "01.txt").read_text().splitlines()
    assert len(said) == 2 and said[1].startswith("(real: ") and len(said[0].split()) >= 2  # the transcript spoken
    manifest = json.loads((voice_run.adapter_dir / "lorakit.json").read_text())
    # prepare_base turned slot "auto" into the closest slot, saved with the options.
    assert manifest["options"]["slot"] in [voice.name for voice in synthetic.BASE_VOICES]


def _slot(run) -> dict:
    return {"slot": json.loads((run.adapter_dir / "lorakit.json").read_text())["options"]["slot"]}


def test_stock_peft_reload_speaks_the_same(voice_run):
    from peft import PeftModel

    from lorakit.lora import match_conv_geometry
    from lorakit_voice.base import load_vits

    task, base, model, _, _ = runs.open_adapter(voice_run.run_dir, options=_slot(voice_run))
    # Stock peft plus the one call its 0.21 release needs for LoRA on dilated convolutions (the model card says so).
    plain = match_conv_geometry(PeftModel.from_pretrained(load_vits("demo").model, str(voice_run.adapter_dir)))
    plain.eval()
    assert "lorakit.lora.match_conv_geometry(model)" in (voice_run.adapter_dir / "README.md").read_text()
    assert torch.equal(task.probe(base, model), task.probe(base, plain))
    ours, theirs = task.predict(base, model, TEXTS), task.predict(base, plain, TEXTS)
    assert all(np.array_equal(a["audio"], b["audio"]) for a, b in zip(ours, theirs))


def test_merged_coqui_checkpoint_loads_in_coqui_and_speaks_as_unmerged(voice_run, tmp_path):
    from TTS.tts.models.vits import Vits
    from TTS.utils.synthesizer import Synthesizer

    from lorakit_voice.base import read_config

    out = tmp_path / "merged"
    runs.export_merged(voice_run.run_dir, out)
    config = read_config(out)
    merged = Vits(config)
    merged.load_checkpoint(config, str(out / "model.pth"), eval=True)  # coqui's own loader, strict
    task, base, model, _, _ = runs.open_adapter(voice_run.run_dir, options=_slot(voice_run))
    unmerged, coqui = task.predict(base, model, TEXTS), task.predict(base, merged, TEXTS)
    for a, b in zip(unmerged, coqui):
        assert len(a["audio"]) == len(b["audio"]) and np.abs(a["audio"] - b["audio"]).max() < 1e-4
    assert torch.allclose(task.probe(base, model), task.probe(base, merged), atol=1e-5)
    speaker = _slot(voice_run)["slot"]
    synthesizer = Synthesizer(tts_checkpoint=str(out / "model.pth"), tts_config_path=str(out / "config.json"))
    wav = synthesizer.tts(TEXTS[0], speaker_name=speaker)
    assert len(wav) > 8000 and all(math.isfinite(x) for x in wav[:100])
    assert json.loads((out / "config.json").read_text())["lorakit"] == {"cloned_speaker": speaker}
    assert f"--speaker_idx {speaker}" in (out / "README.md").read_text()


def test_cli_predict_writes_a_wav_at_the_model_rate(voice_run, tmp_path):
    out = tmp_path / "hello.wav"
    # No --slot: the slot prepare_base chose is restored from the adapter's options.
    args = ["predict", "voice-clone", "--adapter", str(voice_run.run_dir), "--text", "Hello there.", "--out", str(out)]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    audio, rate = soundfile.read(out)
    assert rate == 16000 and len(audio) > 4000 and np.abs(audio).max() > 0.01
    assert json.loads(result.stdout)["audio"] == str(out)
