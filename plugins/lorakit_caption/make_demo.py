"""Build the tiny demo BLIP (``--base demo``) from nothing, offline.

The demo base is a ~0.4 M-parameter ``BlipForConditionalGeneration`` (64x64
images, patch 8, two layers a tower) with a small WordPiece vocabulary built
here. It is pretrained fully on the synthetic *base* domain (``scene``
images, plus ``sign`` images that teach it to write the words the catalog
domain needs; see ``synthetic.py``), so that a LoRA adapter has a competent
base to adapt, as with a real pretrained BLIP. It never sees a catalog image.

Rebuild the committed demo base (about a minute on 2 CPU cores; seeded, so a
rebuild on the same stack gives the same weights)::

    python -m lorakit_caption.make_demo --out plugins/lorakit_caption/demo_base

``--quick`` trains a few steps only (for tests). The sample datasets are
rewritten by ``python -m lorakit_caption.synthetic --out samples/caption``.
"""

from __future__ import annotations

import argparse
import string
import time
from pathlib import Path

from lorakit_caption import synthetic

SEED = 0
IMAGE_SIZE = 64
HIDDEN = 96
SCENES, SIGNS = 2000, 400
STEPS, QUICK_STEPS = 1200, 5
BATCH_SIZE = 32
LEARNING_RATE = 2e-3
# FACTS: a tiny ViT learns left/right only with a position embedding larger
# than BLIP's default init.
POSITION_INIT_STD = 1.0

MODEL_CARD = """# lorakit demo BLIP

A tiny BlipForConditionalGeneration (64x64 images, patch 8, 2 layers per tower,
hidden 96) pretrained from scratch for {steps} steps on {scenes} synthetic
`scene` images and {signs} `sign` images (see `lorakit_caption/synthetic.py`).
It is a demo base for `lorakit run caption --base demo`, not a useful captioner.

Rebuild: `python -m lorakit_caption.make_demo --out plugins/lorakit_caption/demo_base`
"""

SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "[DEC]")


def vocabulary() -> dict[str, int]:
    """Special tokens, the synthetic worlds' words, then single characters
    (whole and ``##`` continuations) so any other word, such as a trigger
    word, still tokenises into known pieces instead of [UNK]."""
    characters = list(string.ascii_lowercase + string.digits)
    tokens = list(SPECIAL_TOKENS) + synthetic.caption_words() + list(string.punctuation)
    tokens += characters + [f"##{c}" for c in characters]
    unique = list(dict.fromkeys(tokens))  # a letter like "a" is also a word
    return {token: index for index, token in enumerate(unique)}


def build_processor():
    """A ``BlipProcessor``: BLIP's image processor at 64x64 and a BERT
    tokenizer over ``vocabulary()`` whose bos is ``[DEC]``, as BLIP's is."""
    from transformers import BertTokenizer, BlipImageProcessor, BlipProcessor

    tokenizer = BertTokenizer(vocab=vocabulary(), bos_token="[DEC]", model_max_length=40)
    images = BlipImageProcessor(size={"height": IMAGE_SIZE, "width": IMAGE_SIZE})
    return BlipProcessor(image_processor=images, tokenizer=tokenizer)


def build_model(tokenizer):
    """A freshly initialised tiny BLIP whose special ids match ``tokenizer``."""
    import torch
    from transformers import BlipConfig, BlipForConditionalGeneration

    layers = dict(hidden_size=HIDDEN, intermediate_size=2 * HIDDEN, num_hidden_layers=2, num_attention_heads=4)
    vision = dict(layers, image_size=IMAGE_SIZE, patch_size=8, projection_dim=HIDDEN,
                  initializer_range=0.02)  # BLIP's vision default (1e-10) leaves the tower dead
    sep = tokenizer.sep_token_id
    text = dict(layers, vocab_size=len(tokenizer), encoder_hidden_size=HIDDEN, projection_dim=HIDDEN,
                max_position_embeddings=40, pad_token_id=tokenizer.pad_token_id,
                bos_token_id=tokenizer.bos_token_id, sep_token_id=sep, eos_token_id=sep)
    config = BlipConfig(vision_config=vision, text_config=text, projection_dim=HIDDEN)
    torch.manual_seed(SEED)
    model = BlipForConditionalGeneration(config)
    torch.nn.init.normal_(model.vision_model.embeddings.position_embedding, std=POSITION_INIT_STD)
    return model


def encode(processor, samples, bos_id: int) -> dict:
    """Tensors of rendered samples, labelled as ``CaptionTask.collate`` does."""
    pixel_values = processor.image_processor(images=[s.image for s in samples], return_tensors="pt")["pixel_values"]
    tokens = processor.tokenizer([s.caption for s in samples], padding="longest", return_tensors="pt")
    input_ids = tokens["input_ids"]
    input_ids[:, 0] = bos_id
    labels = input_ids.masked_fill(tokens["attention_mask"] == 0, -100)
    return {"pixel_values": pixel_values, "input_ids": input_ids, "attention_mask": tokens["attention_mask"], "labels": labels}


def pretrain(model, data: dict, steps: int, log=print) -> float:
    """Train every weight of ``model`` on ``data``; returns the final loss."""
    from lorakit.api import pretrain_on_tensors

    return pretrain_on_tensors(model, data, steps, LEARNING_RATE, BATCH_SIZE, SEED, log, log_every=200)


def make_demo(out: Path, quick: bool = False, log=print) -> Path:
    """Build, pretrain and save the demo base into ``out``; returns ``out``."""
    import torch

    torch.manual_seed(SEED)
    processor = build_processor()
    model = build_model(processor.tokenizer)
    scenes, signs = (64, 16) if quick else (SCENES, SIGNS)
    samples = synthetic.render("scene", scenes, seed=100) + synthetic.render("sign", signs, seed=101)
    data = encode(processor, samples, model.config.text_config.bos_token_id)
    started = time.perf_counter()
    pretrain(model, data, QUICK_STEPS if quick else STEPS, log=log)
    log(f"pretrained in {time.perf_counter() - started:.1f} s")
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)  # safetensors
    processor.save_pretrained(out)
    (out / "README.md").write_text(MODEL_CARD.format(steps=QUICK_STEPS if quick else STEPS, scenes=scenes, signs=signs))
    return out


def main(argv: list[str] | None = None) -> None:
    """Command line: ``python -m lorakit_caption.make_demo --out DIR [--quick]``."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, required=True, help="folder to write the demo base into")
    parser.add_argument("--quick", action="store_true", help="a few training steps only (tests)")
    args = parser.parse_args(argv)
    import torch

    torch.set_num_threads(min(2, torch.get_num_threads()))  # the published timing is for 2 cores
    make_demo(args.out, quick=args.quick)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
