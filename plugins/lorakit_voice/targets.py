"""Where LoRA goes in a coqui VITS, and why there.

The generator has no ``nn.Linear``: its linear maps are 1x1 ``Conv1d``. Timbre
lives in the HiFiGAN decoder, so attention and the duration predictor alone
do not move speaker similarity (FACTS); the default adds the WaveNet layers
of the posterior encoder and the flow, and the decoder's non-dilated convs.

peft traps this regex avoids (FACTS):

* a dilated ``Conv1d`` injects fine and then crashes in forward (peft's
  ``lora_A`` ignores dilation): the WaveNet ``in_layers`` (dilated when
  ``dilation_rate > 1``) and the decoder resblocks' ``convs1`` are left out;
  ``convs2`` of coqui's ResBlock1 always have dilation 1;
* ``ConvTranspose1d`` (the decoder's ``ups``) is refused by peft;
* a short suffix such as ``"0"`` would also match the weight-norm
  parametrization ``parametrizations.weight.0``: the regex names full paths,
  and peft matches a string target with ``re.fullmatch``.

The first two are also refused by the core for any ``--lora.targets`` a user
gives (``lorakit.lora.check_targets``), so they need no check here.
"""

DEFAULT_TARGETS = (
    r"(text_encoder\.encoder\.attn_layers\.\d+\.conv_[qkvo]"
    r"|(posterior_encoder|flow\.flows\.\d+)\.enc\.(res_skip_layers\.\d+|cond_layer)"
    r"|duration_predictor\.(conv_1|conv_2|proj|cond)"
    r"|waveform_decoder\.(conv_pre|cond_layer|resblocks\.\d+\.convs2\.\d+))"
)

#: Measured alternative (ablation): text-encoder attention only.
ATTENTION_ONLY = r"text_encoder\.encoder\.attn_layers\.\d+\.conv_[qkvo]"
