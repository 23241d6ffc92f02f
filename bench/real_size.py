"""Real-size bases with random weights, written as local folders the way the hub lays them out.

    python bench/real_size.py OUT_DIR [--only caption,vqa,music,voice]

No hub weights can be downloaded here, and none are needed to measure memory
and speed: each model is built from its published config (written out below
by hand), initialised randomly and saved with its processor files, so that
``--base OUT_DIR/<folder>`` loads through the task's own ``load_base``
exactly as a user's copy of the real checkpoint would:

* ``blip-image-captioning-base``  BlipForConditionalGeneration (ViT-B/16 at
  384 px, 12-layer BERT-base decoder), as Salesforce/blip-image-captioning-base
* ``blip-vqa-base``               BlipForQuestionAnswering, as Salesforce/blip-vqa-base
* ``musicgen-small``              MusicgenForConditionalGeneration: T5-base text
  encoder, 32 kHz EnCodec, 24-layer 1024-wide decoder over 4 codebooks, as facebook/musicgen-small
* ``vits-vctk``                   a coqui VITS of coqui's default sizes (22.05 kHz,
  192 channels, stochastic duration predictor) with VCTK's 109 speaker slots,
  as tts_models/en/vctk/vits (``model.pth`` + ``config.json``)

What differs from the published checkpoints, none of which changes a weight's
shape: the tokenizers are built here (BERT's and T5's special ids and
vocabulary sizes, with the sample data's words and filler entries in place of
the real word lists), the VITS reads graphemes instead of espeak phonemes,
and the weights are random. A folder is written atomically, so one that
exists is complete and is not built again.
"""

from __future__ import annotations

import argparse
import string
import sys
from pathlib import Path
from typing import Any, Callable

REPO = Path(__file__).resolve().parents[1]
SEED = 0

#: Model key -> (folder name, lorakit task, sample data the task trains on).
MODELS = {
    "caption": ("blip-image-captioning-base", "caption", REPO / "samples/caption/catalog"),
    "vqa": ("blip-vqa-base", "vqa", REPO / "samples/vqa/inspection"),
    "music": ("musicgen-small", "music-style", REPO / "samples/music/chiptune"),
    "voice": ("vits-vctk", "voice-clone", REPO / "samples/voice/kauko"),
}
#: A config-built BLIP's head has no bias, so ``train_head auto`` would train the caption
#: head whole (23 M parameters), which a pretrained BLIP-base needs only for words it never
#: says: the benches measure the caption LoRA a pretrained base trains, with these flags.
CAPTION_LORA_ONLY = ["--train_head", "never"]

# -- BLIP -----------------------------------------------------------------------------

#: bert-base-uncased's special ids, and BLIP's two added tokens after its 30522.
BERT_SPECIAL = {"[PAD]": 0, "[UNK]": 100, "[CLS]": 101, "[SEP]": 102, "[MASK]": 103}
BERT_VOCAB, BLIP_VOCAB = 30522, 30524
#: CLIP's normalisation, which BLIP's image processor uses.
CLIP_MEAN, CLIP_STD = [0.48145466, 0.4578275, 0.40821073], [0.26862954, 0.26130258, 0.27577711]


def _demo_words(tokenizer_json: Path, skip: set[str]) -> list[str]:
    """The vocabulary of a demo base's tokenizer (it covers the sample data), minus ``skip``."""
    import json

    model = json.loads(tokenizer_json.read_text())["model"]
    vocab = model["vocab"]
    pieces = [p for p, _ in vocab] if isinstance(vocab, list) else sorted(vocab, key=vocab.get)
    return [p for p in pieces if p not in skip]


def blip_processor() -> Any:
    """BLIP-base's processor: 384 px CLIP-normalised images and a BERT
    tokenizer with bert-base-uncased's special ids and BLIP's 30524 entries."""
    from transformers import BertTokenizer, BlipImageProcessor, BlipProcessor

    words = _demo_words(REPO / "plugins/lorakit_caption/demo_base/tokenizer.json", set(BERT_SPECIAL) | {"[DEC]"})
    free = [i for i in range(BERT_VOCAB) if i not in BERT_SPECIAL.values()]
    fillers = [f"[unused{i}]" for i in range(len(free) - len(words))]
    vocab = {**BERT_SPECIAL, **dict(zip(words + fillers, free)), "[DEC]": BERT_VOCAB, "[ENC]": BERT_VOCAB + 1}
    tokenizer = BertTokenizer(vocab=vocab, bos_token="[DEC]", model_max_length=512)
    images = BlipImageProcessor(size={"height": 384, "width": 384}, image_mean=CLIP_MEAN, image_std=CLIP_STD,
                                resample=3)
    return BlipProcessor(image_processor=images, tokenizer=tokenizer)


def blip_config(architecture: str) -> Any:
    """Salesforce/blip-*-base: ViT-B/16 at 384 px, BERT-base text model."""
    from transformers import BlipConfig

    vision = dict(hidden_size=768, intermediate_size=3072, num_hidden_layers=12, num_attention_heads=12,
                  image_size=384, patch_size=16, projection_dim=512, layer_norm_eps=1e-5,
                  initializer_range=0.02)  # FACTS: the default 1e-10 leaves a config-built tower dead
    text = dict(vocab_size=BLIP_VOCAB, hidden_size=768, intermediate_size=3072, num_hidden_layers=12,
                num_attention_heads=12, max_position_embeddings=512, encoder_hidden_size=768, projection_dim=768,
                pad_token_id=0, bos_token_id=BERT_VOCAB, sep_token_id=102, eos_token_id=102)
    config = BlipConfig(vision_config=vision, text_config=text, projection_dim=512, image_text_hidden_size=256)
    config.architectures = [architecture]
    return config


def build_caption(folder: Path) -> None:
    from transformers import BlipForConditionalGeneration

    _save_hf(BlipForConditionalGeneration(blip_config("BlipForConditionalGeneration")), blip_processor(), folder)


def build_vqa(folder: Path) -> None:
    from transformers import BlipForQuestionAnswering

    _save_hf(BlipForQuestionAnswering(blip_config("BlipForQuestionAnswering")), blip_processor(), folder)


# -- MusicGen ---------------------------------------------------------------------------

T5_PIECES, T5_EXTRA_IDS, T5_EMBEDDINGS = 32000, 100, 32128
CODEBOOK_SIZE, CODEBOOKS = 2048, 4


def musicgen_processor() -> Any:
    """EnCodec 32 kHz's feature extractor and a T5 tokenizer with t5-base's
    special ids (pad 0, eos 1, unk 2), 32000 pieces and 100 sentinel ids."""
    import json

    from transformers import EncodecFeatureExtractor, MusicgenProcessor, T5Tokenizer

    demo = json.loads((REPO / "plugins/lorakit_music/demo_base/tokenizer.json").read_text())["model"]["vocab"]
    pieces = [(p, s) for p, s in demo]
    pieces += [(f"\u2581{i:05d}x", -20.0) for i in range(T5_PIECES - len(pieces))]  # never the best split of text
    tokenizer = T5Tokenizer(vocab=pieces, extra_ids=T5_EXTRA_IDS, model_max_length=512)
    features = EncodecFeatureExtractor(feature_size=1, sampling_rate=32000, padding_value=0.0)
    return MusicgenProcessor(feature_extractor=features, tokenizer=tokenizer)


def musicgen_config() -> Any:
    """facebook/musicgen-small: t5-base, encodec_32khz, 24 x 1024 decoder."""
    from transformers import EncodecConfig, MusicgenConfig, MusicgenDecoderConfig, T5Config

    text = T5Config(vocab_size=T5_EMBEDDINGS, d_model=768, d_kv=64, d_ff=3072, num_layers=12, num_heads=12,
                    relative_attention_num_buckets=32, dropout_rate=0.1, feed_forward_proj="relu",
                    pad_token_id=0, eos_token_id=1, decoder_start_token_id=0)
    codec = EncodecConfig(sampling_rate=32000, audio_channels=1, num_filters=64, hidden_size=128, codebook_dim=128,
                          codebook_size=CODEBOOK_SIZE, upsampling_ratios=[8, 5, 4, 4], num_lstm_layers=2,
                          target_bandwidths=[2.2], use_causal_conv=False, use_conv_shortcut=False, normalize=False,
                          norm_type="weight_norm", compress=2, residual_kernel_size=3, num_residual_layers=1)
    decoder = MusicgenDecoderConfig(vocab_size=CODEBOOK_SIZE, hidden_size=1024, num_hidden_layers=24,
                                    num_attention_heads=16, ffn_dim=4096, num_codebooks=CODEBOOKS,
                                    max_position_embeddings=2048, dropout=0.1, activation_function="gelu",
                                    pad_token_id=CODEBOOK_SIZE, bos_token_id=CODEBOOK_SIZE,
                                    decoder_start_token_id=CODEBOOK_SIZE)
    config = MusicgenConfig(text_encoder=text.to_dict(), audio_encoder=codec.to_dict(), decoder=decoder.to_dict())
    config.architectures = ["MusicgenForConditionalGeneration"]
    return config


def build_music(folder: Path) -> None:
    import torch
    from transformers import MusicgenForConditionalGeneration

    model = MusicgenForConditionalGeneration(musicgen_config())
    assert model.decoder.num_codebooks == model.audio_encoder.quantizer.get_num_quantizers_for_bandwidth(2.2) == CODEBOOKS
    # FACTS: a config-built EnCodec's codebooks are zeros (every frame code 0); random ones give varied codes.
    with torch.no_grad():
        for layer in model.audio_encoder.quantizer.layers:
            layer.codebook.embed.normal_()
            layer.codebook.embed_avg.copy_(layer.codebook.embed)
            layer.codebook.cluster_size.fill_(1.0)
    model.generation_config.update(pad_token_id=CODEBOOK_SIZE, bos_token_id=CODEBOOK_SIZE,
                                   decoder_start_token_id=CODEBOOK_SIZE, max_length=1500, do_sample=True,
                                   top_k=250, guidance_scale=3.0)
    _save_hf(model, musicgen_processor(), folder)


# -- VITS -------------------------------------------------------------------------------

VCTK_SPEAKERS = 109


def vits_config() -> Any:
    """coqui's VCTK VITS: VitsArgs' default sizes, 22.05 kHz audio with 1024-point
    STFTs and hop 256, 109 speaker slots; graphemes instead of espeak phonemes."""
    from TTS.config.shared_configs import BaseAudioConfig
    from TTS.tts.configs.shared_configs import CharactersConfig
    from TTS.tts.configs.vits_config import VitsConfig
    from TTS.tts.models.vits import VitsArgs

    audio = BaseAudioConfig(sample_rate=22050, fft_size=1024, win_length=1024, hop_length=256, num_mels=80,
                            mel_fmin=0, mel_fmax=None)
    args = VitsArgs(out_channels=audio.fft_size // 2 + 1, use_speaker_embedding=True, init_discriminator=False)
    characters = CharactersConfig(
        characters_class="TTS.tts.models.vits.VitsCharacters", characters=string.ascii_lowercase,
        punctuations=" .,!?'-", pad="<PAD>", eos=None, bos=None, blank="<BLNK>", phonemes=None,
        is_unique=True, is_sorted=True,
    )
    speakers = [f"p{225 + i}" for i in range(VCTK_SPEAKERS)]
    return VitsConfig(model_args=args, audio=audio, characters=characters, use_phonemes=False,
                      text_cleaner="basic_cleaners", add_blank=True, speakers=speakers, use_speaker_embedding=True,
                      run_name="vits-vctk-random")


def build_voice(folder: Path) -> None:
    import logging

    from lorakit_voice.base import save_checkpoint
    from TTS.tts.models.vits import Vits

    logging.getLogger("TTS").setLevel(logging.ERROR)
    save_checkpoint(Vits(vits_config()), folder)
    _card(folder, "vits-vctk")


# -- writing ----------------------------------------------------------------------------

BUILDERS: dict[str, Callable[[Path], None]] = {"caption": build_caption, "vqa": build_vqa, "music": build_music,
                                               "voice": build_voice}


def _save_hf(model: Any, processor: Any, folder: Path) -> None:
    model.save_pretrained(folder, safe_serialization=True)
    processor.save_pretrained(folder)
    _card(folder, model.config.architectures[0])


def _card(folder: Path, what: str) -> None:
    (folder / "README.md").write_text(f"# {folder.name}: {what} of real size with RANDOM weights\n\n"
                                      "For memory and speed measurements only (bench/real_size.py); it says nothing.\n")


def ensure(key: str, root: Path, log: Callable[[str], None] = print) -> Path:
    """The folder of model ``key`` under ``root``, built (seeded) unless it is already there."""
    import time

    import torch

    from lorakit.atomic import atomic_dir

    name = MODELS[key][0]
    folder = Path(root) / name
    if folder.is_dir():
        return folder
    started = time.perf_counter()
    torch.manual_seed(SEED)
    with atomic_dir(folder) as tmp:
        BUILDERS[key](tmp)
    log(f"built {folder} in {time.perf_counter() - started:.0f} s")
    return folder


def parse_only(value: str | None) -> list[str]:
    keys = [k.strip() for k in (value or ",".join(MODELS)).split(",") if k.strip()]
    unknown = [k for k in keys if k not in MODELS]
    if unknown:
        raise SystemExit(f"--only: unknown model {', '.join(unknown)}; choose from {', '.join(MODELS)}")
    return keys


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out", type=Path, help="folder to write the model folders into")
    parser.add_argument("--only", help="comma-separated subset of: " + ", ".join(MODELS))
    args = parser.parse_args(argv)
    for key in parse_only(args.only):
        folder = ensure(key, args.out)
        print(f"{key:8} {folder}  (lorakit plan {MODELS[key][1]} --base {folder} --data {MODELS[key][2]})")


if __name__ == "__main__":
    sys.exit(main())
