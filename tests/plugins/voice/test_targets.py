"""LoRA targets: one regex over full names that picks the linear maps and the
decoder's non-dilated convs, never a dilated conv, a ConvTranspose1d or a
weight-norm parametrization (peft traps, FACTS)."""

import re

import torch

from lorakit_voice.targets import ATTENTION_ONLY, DEFAULT_TARGETS, matched_modules, unsafe_targets


def test_default_targets_are_safe_and_cover_each_part(demo_base):
    names = matched_modules(demo_base.model, DEFAULT_TARGETS)
    assert unsafe_targets(demo_base.model, names) == []
    assert not any("parametrizations" in n or ".ups." in n or "convs1" in n or "in_layers" in n for n in names)
    for part in ("text_encoder.encoder.attn_layers.0.conv_q", "posterior_encoder.enc.res_skip_layers.0",
                 "flow.flows.0.enc.cond_layer", "duration_predictor.conv_1", "waveform_decoder.resblocks.0.convs2.0",
                 "waveform_decoder.conv_pre"):
        assert part in names
    assert set(matched_modules(demo_base.model, ATTENTION_ONLY)) < set(names)


def test_unsafe_targets_names_dilated_and_transposed_convs(demo_base):
    bad = ["waveform_decoder.resblocks.0.convs1.1", "waveform_decoder.ups.0"]
    problems = unsafe_targets(demo_base.model, bad)
    assert problems[0].endswith("dilation 3, groups 1") and problems[1].endswith("ConvTranspose1d")


def test_peft_injects_the_regex_and_the_model_still_speaks(demo_base):
    import copy

    from peft import LoraConfig, get_peft_model

    from lorakit_voice.synthesis import Voicing, synthesize

    model = get_peft_model(copy.deepcopy(demo_base.model), LoraConfig(r=4, target_modules=DEFAULT_TARGETS))
    wrapped = {n.removeprefix("base_model.model.") for n, m in model.named_modules() if hasattr(m, "lora_A")}
    assert wrapped == set(matched_modules(demo_base.model, DEFAULT_TARGETS))
    assert not any(re.search(r"parametrizations\.weight\.\d+$", n) for n in wrapped)
    audio = synthesize(model, "hello there.", Voicing(0, noise_scale=0.0))
    assert audio.ndim == 1 and len(audio) > 1000 and torch.isfinite(torch.as_tensor(audio)).all()
