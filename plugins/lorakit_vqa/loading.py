"""Loading a BLIP VQA base: the demo, a local folder, or a hub id, checked first.

A BLIP checkpoint of another head (captioning, image-text retrieval) would
load into ``BlipForQuestionAnswering`` with a randomly initialised question
encoder or answer decoder and answer nonsense without a word of warning, so
the architecture is checked before the weights are read, and any weight the
checkpoint lacks is refused after.
"""

from __future__ import annotations

from pathlib import Path

from lorakit.errors import BaseModelError
from lorakit.task import Base

#: The tiny BLIP VQA shipped with the plugin, built by ``make_demo``.
DEMO_BASE = Path(__file__).parent / "demo_base"
HUB_EXAMPLE = "Salesforce/blip-vqa-base"
_OPTIONS = (f"Pass --base demo (the bundled tiny BLIP VQA), a local folder with config.json written by "
            f"save_pretrained, or a hub id such as {HUB_EXAMPLE} that is cached or reachable online")


def load_vqa_base(name: str) -> Base:
    """Load ``name`` as a ``BlipForQuestionAnswering`` with its ``BlipProcessor``."""
    source = base_source(name)
    check_is_vqa_blip(name, source)
    import torch
    from transformers import BlipForQuestionAnswering, BlipProcessor

    try:
        model, info = BlipForQuestionAnswering.from_pretrained(source, dtype=torch.float32, output_loading_info=True)
        processor = BlipProcessor.from_pretrained(source)
    except (OSError, ValueError) as error:
        raise base_error(name, error) from error
    missing = [key for key in info.get("missing_keys", []) if "position_ids" not in key]
    if missing:
        raise BaseModelError(
            f"--base {name} lacks {len(missing)} weights of a BLIP VQA model (e.g. {missing[0]}): it would answer "
            f"with random layers. Use a BlipForQuestionAnswering checkpoint such as {HUB_EXAMPLE}"
        )
    model.eval()
    return Base(model=model, processor=processor, name=name)


def base_source(name: str) -> str:
    """Where to load ``name`` from: the demo folder, a local folder, or a hub id."""
    if name == "demo":
        if not (DEMO_BASE / "config.json").is_file():
            raise BaseModelError(
                f"the demo base is missing from {DEMO_BASE}; rebuild it: python -m lorakit_vqa.make_demo --out {DEMO_BASE}"
            )
        return str(DEMO_BASE)
    path = Path(name).expanduser()
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise BaseModelError(f"{path} has no config.json; --base takes a folder written by save_pretrained, "
                                 f"a hub id such as {HUB_EXAMPLE}, or demo")
        return str(path)
    if path.exists() or name.startswith((".", "/", "~")) or name.count("/") > 1:
        raise BaseModelError(f"--base {name}: no such model folder. {_OPTIONS}")
    return name


def check_is_vqa_blip(name: str, source: str) -> None:
    """Refuse a model that is not a BLIP VQA model before loading its weights."""
    from transformers import AutoConfig

    try:
        config = AutoConfig.from_pretrained(source)
    except (OSError, ValueError) as error:
        raise base_error(name, error) from error
    architectures = getattr(config, "architectures", None) or []
    if config.model_type != "blip" or (architectures and "BlipForQuestionAnswering" not in architectures):
        kind = ", ".join(architectures) or config.model_type
        raise BaseModelError(
            f"--base {name} is a {kind}, not a BLIP visual question answering model (BlipForQuestionAnswering); "
            f"use e.g. {HUB_EXAMPLE}, or the caption task for BLIP captioning models"
        )


def base_error(name: str, error: Exception) -> BaseModelError:
    """The error of a base that cannot be read, with what to pass instead."""
    first_line = str(error).splitlines()[0] if str(error) else ""
    return BaseModelError(f"cannot load the base {name!r} ({error.__class__.__name__}: {first_line}). {_OPTIONS}")
