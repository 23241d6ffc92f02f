"""Loading a BLIP VQA base: the demo, a local folder, or a hub id, checked first.

A BLIP checkpoint of another head (captioning, image-text retrieval) would
load into ``BlipForQuestionAnswering`` with a randomly initialised question
encoder or answer decoder and answer nonsense without a word of warning, so
the architecture is checked before the weights are read, and any weight the
checkpoint lacks is refused after.
"""

from __future__ import annotations

from pathlib import Path

from lorakit.api import Base, BaseKind, BaseModelError, load_pretrained

#: The tiny BLIP VQA shipped with the plugin, built by ``make_demo``.
DEMO_BASE = Path(__file__).parent / "demo_base"
HUB_EXAMPLE = "Salesforce/blip-vqa-base"
BASE_KIND = BaseKind(
    label="BLIP visual question answering model", model_type="blip", architecture="BlipForQuestionAnswering",
    demo=DEMO_BASE, rebuild=f"python -m lorakit_vqa.make_demo --out {DEMO_BASE}", example=HUB_EXAMPLE,
    hint="or the caption task for BLIP captioning models",
)


def load_vqa_base(name: str) -> Base:
    """Load ``name`` as a ``BlipForQuestionAnswering`` with its ``BlipProcessor``."""
    from transformers import BlipForQuestionAnswering, BlipProcessor

    from lorakit_blip.attention import fuse_attention

    model, processor, info = load_pretrained(name, BASE_KIND, BlipForQuestionAnswering, BlipProcessor)
    missing = [key for key in info.get("missing_keys", []) if "position_ids" not in key]
    if missing:
        raise BaseModelError(
            f"--base {name} lacks {len(missing)} weights of a BLIP VQA model (e.g. {missing[0]}): it would answer "
            f"with random layers. Use a BlipForQuestionAnswering checkpoint such as {HUB_EXAMPLE}"
        )
    fuse_attention(model)
    model.eval()
    return Base(model=model, processor=processor, name=name)
