"""Where LoRA goes in a coqui VITS, and why there.

The generator has no ``nn.Linear``: its linear maps are 1x1 ``Conv1d``. Timbre
lives in the HiFiGAN decoder, so attention and the duration predictor alone
do not move speaker similarity (FACTS); the default adds the WaveNet layers
of the posterior encoder and the flow, and every convolution of the decoder
that peft can adapt, the dilated ones included.

Measured on voices the demo never heard (``bench/voice_panel.py``, defaults
otherwise): without the dilated convolutions (the WaveNet ``in_layers`` and
the decoder resblocks' ``convs1``) the decoder could not render a slow, low
voice: gustave-slow reached 0.63 similarity (0.73 to the base voice), and
even its copy synthesis through the posterior stayed at 0.66; with them,
0.70 (0.69 to the base voice), for ~15% more time a step.

HiFiGAN's residual blocks come in two types: type 1 names its convolutions
``convs1.N`` and ``convs2.N``, type 2 (Piper's medium voices) ``convs.N``. The
regex takes both; one that took type 1's alone left a type-2 decoder with
LoRA on ``conv_pre`` only, whose clones buzzed at the frame rate (README,
Piper voices).

peft traps this regex avoids (FACTS):

* ``ConvTranspose1d`` (the decoder's ``ups``) is refused by peft;
* a short suffix such as ``"0"`` would also match the weight-norm
  parametrization ``parametrizations.weight.0``: the regex names full paths,
  and peft matches a string target with ``re.fullmatch``.

Dilated convolutions need ``lorakit.lora.match_conv_geometry`` (peft 0.21
builds their ``lora_A`` without the dilation); the core applies it wherever an
adapter is made or loaded. Transposed convolutions are refused by the core for
any ``--lora.targets`` a user gives (``lorakit.lora.check_targets``).
"""

DEFAULT_TARGETS = (
    r"(text_encoder\.encoder\.attn_layers\.\d+\.conv_[qkvo]"
    r"|(posterior_encoder|flow\.flows\.\d+)\.enc\.(in_layers\.\d+|res_skip_layers\.\d+|cond_layer)"
    r"|duration_predictor\.(conv_1|conv_2|proj|cond)"
    r"|waveform_decoder\.(conv_pre|cond_layer|resblocks\.\d+\.convs[12]?\.\d+))"
)

#: A Piper voice's default: the HiFiGAN decoder's residual blocks. Its ONNX
#: has no posterior encoder (a warm-up rebuilds one from the voice's own
#: speech), and LoRA on the text side learns to produce what that encoder
#: reads from another voice: with every default target the clones gained
#: similarity and lost their words (Whisper's word error rate on kauko's
#: held-out sentences 1.00 at 40 and 150 steps, the base 0.00). The decoder's
#: first convolution (conv_pre) is left out: it reads the latent frame by
#: frame, and its LoRA can render every frame alike, a tone at the frame rate
#: (86 Hz at 22050 / 256) that pulls the clone's pitch there. In six pairs
#: of runs (three voices, two seeds) the residual blocks alone matched
#: conv_pre + blocks within seed noise (similarity, MCD, words), the pitch
#: gap to the speaker smaller in five of the six (README, Piper voices).
PIPER_TARGETS = r"waveform_decoder\.(cond_layer|resblocks\.\d+\.convs[12]?\.\d+)"

#: Measured alternative (ablation): text-encoder attention only.
ATTENTION_ONLY = r"text_encoder\.encoder\.attn_layers\.\d+\.conv_[qkvo]"
