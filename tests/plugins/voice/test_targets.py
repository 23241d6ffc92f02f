"""LoRA targets: one regex over full names that picks the linear maps and the
decoder's convs, dilated ones included, never a ConvTranspose1d or a
weight-norm parametrization (peft traps, FACTS); and a user's --lora.targets
that selects a ConvTranspose1d is refused by the core before anything trains."""

import dataclasses
import re

import pytest
import torch
from voice_speakers import SAMPLES

from lorakit import runs
from lorakit.api import ConfigError
from lorakit.lora import check_targets, targeted_modules
from lorakit_voice.targets import ATTENTION_ONLY, DEFAULT_TARGETS, PIPER_TARGETS
from lorakit_voice.task import VoiceCloneTask


def _names(model, targets):
    return [name for name, _ in targeted_modules(model, targets)]


def test_default_targets_pass_the_core_check_and_cover_each_part(demo_base):
    assert VoiceCloneTask.lora_targets == DEFAULT_TARGETS
    check_targets(demo_base.model, DEFAULT_TARGETS)  # raises on a ConvTranspose1d
    names = _names(demo_base.model, DEFAULT_TARGETS)
    assert not any("parametrizations" in n or ".ups." in n for n in names)
    for part in ("text_encoder.encoder.attn_layers.0.conv_q", "posterior_encoder.enc.res_skip_layers.0",
                 "posterior_encoder.enc.in_layers.1", "flow.flows.0.enc.cond_layer", "duration_predictor.conv_1",
                 "waveform_decoder.resblocks.0.convs1.1", "waveform_decoder.resblocks.0.convs2.0",
                 "waveform_decoder.conv_pre"):
        assert part in names
    assert set(_names(demo_base.model, ATTENTION_ONLY)) < set(names)


def test_core_check_names_transposed_convs(demo_base):
    bad = r"waveform_decoder\.(resblocks\.0\.convs1\.1|ups\.0)"
    with pytest.raises(ConfigError) as error:
        check_targets(demo_base.model, bad)
    message = str(error.value)
    assert "waveform_decoder.ups.0 (transposed convolution)" in message
    assert "convs1.1 (" not in message  # dilated: adaptable, so not listed
    assert "Leave them out of --lora.targets" in message


def test_a_run_with_bad_lora_targets_is_refused_before_training(tmp_path):
    out = tmp_path / "run"
    config = runs.load_config("voice-clone", ["--speaker", str(SAMPLES / "kauko"), "--base", "demo", "--slot", "klatt",
                                              "--lora.targets", "[convs1.1, ups.0]", "--output", str(out)])
    with pytest.raises(ConfigError, match=r"selects layers LoRA cannot adapt: .*ups\.0 \(transposed convolution\)"):
        runs.run(config, show_progress=False)
    assert not (out / "checkpoints").exists()


def test_lora_injects_the_regex_and_the_model_still_speaks(demo_base):
    import copy

    from lorakit.config import LoraSettings
    from lorakit.lora import inject
    from lorakit_voice.synthesis import Voicing, synthesize

    model = inject(copy.deepcopy(demo_base.model), LoraSettings(r=4), DEFAULT_TARGETS, [])
    wrapped = {n.removeprefix("base_model.model.") for n, m in model.named_modules() if hasattr(m, "lora_A")}
    assert wrapped == set(_names(demo_base.model, DEFAULT_TARGETS))
    assert not any(re.search(r"parametrizations\.weight\.\d+$", n) for n in wrapped)
    audio = synthesize(model, "hello there.", Voicing(0, noise_scale=0.0))
    assert audio.ndim == 1 and len(audio) > 1000 and torch.isfinite(torch.as_tensor(audio)).all()


def test_the_targets_follow_the_base_each_task_instance_is_prepared_for(demo_base):
    # A Piper voice gets the decoder's targets (targets.py); the same task
    # object prepared afterwards for another base gets the default set back.
    task = VoiceCloneTask()
    task.prepare_base(dataclasses.replace(demo_base, name="piper:en_US-joe-medium"), None)
    assert task.lora_targets == PIPER_TARGETS
    task.prepare_base(demo_base, None)
    assert task.lora_targets == DEFAULT_TARGETS
    assert VoiceCloneTask.lora_targets == DEFAULT_TARGETS


@pytest.mark.parametrize("resblock", ["1", "2"])
@pytest.mark.parametrize("targets", [DEFAULT_TARGETS, PIPER_TARGETS], ids=["default", "piper"])
def test_the_decoder_targets_cover_its_residual_blocks_in_either_type(resblock, targets):
    # Type 2 (Piper's medium voices) names its convolutions convs.N, type 1
    # convs1.N / convs2.N; a regex that missed type 2 left LoRA on conv_pre alone.
    from TTS.tts.models.vits import Vits

    from lorakit_voice.make_demo import build_config

    config = build_config(["a"])
    config.model_args.resblock_type_decoder = resblock
    if resblock == "2":
        config.model_args.resblock_dilation_sizes_decoder = [[1, 3]] * 2
    model = Vits(config)
    # Every Conv1d of the decoder but conv_post (its last layer, left to the base) and
    # the transposed upsampling convolutions (not Conv1d; peft refuses them).
    convolutions = {f"waveform_decoder.{name}" for name, module in model.waveform_decoder.named_modules()
                    if isinstance(module, torch.nn.Conv1d) and name != "conv_post"}
    assert sum(".resblocks." in name for name in convolutions) == 3 * 2 * (6 if resblock == "1" else 2)
    if targets == PIPER_TARGETS:  # a Piper voice leaves conv_pre to the base too (targets.py)
        convolutions.remove("waveform_decoder.conv_pre")
    assert {name for name in _names(model, targets) if name.startswith("waveform_decoder.")} == convolutions
