"""Build the tiny demo BLIP VQA model (``--base demo``) offline, from the caption demo.

The demo base is a ~0.6 M-parameter ``BlipForQuestionAnswering`` with the
caption demo's tokenizer and image processor (64x64 images). It is
warm-started from the caption demo base (``lorakit_caption/demo_base``), as
BLIP VQA is from a pretrained BLIP: the vision tower and the answer decoder
are copied, and the question encoder starts from the decoder's BERT weights.
It is then trained fully on the synthetic *base* domain (questions about
``scene`` images; see ``synthetic.py``), so that a LoRA adapter
has a competent base to adapt. It never sees an inspection image and never
answers a damage word.

Rebuild the committed demo base (seeded, so a rebuild on the same stack
gives the same weights; about six minutes on one CPU core)::

    python -m lorakit_vqa.make_demo --out plugins/lorakit_vqa/demo_base

``--quick`` trains a few steps only (for tests). The sample datasets are
rewritten by ``python -m lorakit_vqa.synthetic --out samples/vqa``.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from lorakit_vqa import synthetic

SEED = 0
SCENES = 4000
STEPS, QUICK_STEPS = 1400, 5
BATCH_SIZE = 32
LEARNING_RATE = 1e-3

MODEL_CARD = """# lorakit demo BLIP VQA

A tiny BlipForQuestionAnswering (64x64 images, patch 8, 2 layers per tower,
hidden 96) with the caption demo's tokenizer, warm-started from the caption
demo base (`lorakit_caption/demo_base`: vision tower and decoder copied, the
question encoder from the decoder's BERT weights) and trained fully for
{steps} steps on {scenes} synthetic `scene` questions (see
`lorakit_vqa/synthetic.py`). It is a demo base for `lorakit run vqa --base demo`,
not a useful VQA model.

Rebuild: `python -m lorakit_vqa.make_demo --out plugins/lorakit_vqa/demo_base`
"""


def warm_start():
    """A ``BlipForQuestionAnswering`` and processor made from the caption demo base."""
    import torch
    from lorakit_caption.task import CaptionTask
    from transformers import BlipForQuestionAnswering

    from lorakit_blip.attention import fuse_attention

    caption = CaptionTask().load_base("demo")
    config = caption.model.config
    config.architectures = ["BlipForQuestionAnswering"]
    torch.manual_seed(SEED)
    model = BlipForQuestionAnswering(config)
    model.vision_model.load_state_dict(caption.model.vision_model.state_dict())
    model.text_decoder.load_state_dict(caption.model.text_decoder.state_dict())
    # BLIP starts its question encoder from a pretrained BERT: here the
    # decoder's, whose cross-attention already looks at images.
    model.text_encoder.load_state_dict(caption.model.text_decoder.bert.state_dict())
    fuse_attention(model)  # pretrained with the attention the VQA task trains and answers with
    return model, caption.processor


def encode(processor, questions, bos_id: int) -> dict:
    """Tensors of rendered questions, labelled as ``VqaTask.collate`` does."""
    from lorakit_vqa.batch import encode_batch

    return encode_batch(processor, [q.image for q in questions], [q.question for q in questions],
                        [q.answers[0] for q in questions], bos_id)


def pretrain(model, data: dict, steps: int, log=print) -> float:
    """Train every weight of ``model`` on ``data``; returns the final loss."""
    from lorakit.api import pretrain_on_tensors

    return pretrain_on_tensors(model, data, steps, LEARNING_RATE, BATCH_SIZE, SEED, log, log_every=100)


def make_demo(out: Path, quick: bool = False, log=print) -> Path:
    """Build, pretrain and save the demo base into ``out``; returns ``out``."""
    import torch

    torch.manual_seed(SEED)
    model, processor = warm_start()
    scenes = 64 if quick else SCENES
    questions = synthetic.render("scene", scenes, seed=100)
    data = encode(processor, questions, model.config.text_config.bos_token_id)
    started = time.perf_counter()
    steps = QUICK_STEPS if quick else STEPS
    pretrain(model, data, steps, log=log)
    log(f"pretrained in {time.perf_counter() - started:.1f} s")
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)  # safetensors
    processor.save_pretrained(out)
    (out / "README.md").write_text(MODEL_CARD.format(steps=steps, scenes=scenes))
    return out


def main(argv: list[str] | None = None) -> None:
    """Command line: ``python -m lorakit_vqa.make_demo --out DIR [--quick]``."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, required=True, help="folder to write the demo base into")
    parser.add_argument("--quick", action="store_true", help="a few training steps only (tests)")
    args = parser.parse_args(argv)
    import torch

    torch.set_num_threads(1)  # the published timing is for one core
    make_demo(args.out, quick=args.quick)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
