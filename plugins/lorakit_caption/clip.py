"""CLIPScore with open_clip: how well a caption fits its image, without references.

CLIPScore = 2.5 * max(cos(image, text), 0) (Hessel et al., 2021). The model is
any open_clip model a user has: ``NAME:PRETRAINED`` (e.g. ``ViT-B-32:openai``,
fetched by open_clip when online), a local ``.safetensors`` checkpoint with
``--clip NAME:/path/model.safetensors``, a folder in the layout of open_clip
models on the Hugging Face Hub (``open_clip_config.json`` beside an
``open_clip_model.safetensors``), or ``demo``: a tiny CLIP in that layout,
trained by ``python -m lorakit_caption.make_clip`` on the caption samples.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from lorakit.api import BaseModelError, offline_unless_reachable, open_rgb

DEMO_CLIP = Path(__file__).parent / "demo_clip"
FOLDER_CONFIG = "open_clip_config.json"
# The checkpoint names open_clip's Hub folders use, in the order open_clip prefers them.
FOLDER_WEIGHTS = ("open_clip_model.safetensors", "open_clip_pytorch_model.safetensors", "model.safetensors")
WEIGHT = 2.5


@dataclass
class ClipScorer:
    name: str
    model: Any
    preprocess: Any
    tokenizer: Any

    @classmethod
    def load(cls, spec: str) -> "ClipScorer":
        if spec == "demo" or Path(spec).is_dir():
            model, preprocess, tokenizer = _load_folder(DEMO_CLIP if spec == "demo" else Path(spec), spec)
        else:
            model, preprocess, tokenizer = _load_named(spec)
        device = "cuda" if _cuda() else "cpu"
        return cls(spec, model.eval().to(device), preprocess, tokenizer)

    def _device(self) -> Any:
        return next(self.model.parameters()).device

    def image_features(self, paths: Sequence[str]) -> Any:
        import torch

        pixels = torch.stack([self.preprocess(open_rgb(p).image) for p in paths]).to(self._device())
        with torch.inference_mode():
            return torch.nn.functional.normalize(self.model.encode_image(pixels).float(), dim=-1)

    def text_features(self, texts: Sequence[str]) -> Any:
        import torch

        tokens = self.tokenizer(list(texts)).to(self._device())
        with torch.inference_mode():
            return torch.nn.functional.normalize(self.model.encode_text(tokens).float(), dim=-1)

    def scores(self, paths: Sequence[str], captions: Sequence[str]) -> list[float]:
        """CLIPScore of each (image, caption) pair."""
        cosine = (self.image_features(paths) * self.text_features(captions)).sum(-1)
        return [WEIGHT * max(float(c), 0.0) for c in cosine]

    def score_candidates(self, paths: Sequence[str], candidates: Sequence[Sequence[str]]) -> list[list[float]]:
        """CLIPScore of every candidate caption of every image."""
        images = self.image_features(paths)
        flat = [c for options in candidates for c in options]
        texts = self.text_features(flat)
        out, start = [], 0
        for image, options in zip(images, candidates):
            cosine = texts[start : start + len(options)] @ image
            out.append([WEIGHT * max(float(c), 0.0) for c in cosine])
            start += len(options)
        return out


def _load_named(spec: str) -> tuple[Any, Any, Any]:
    """``NAME:PRETRAINED`` or ``NAME:/path/model.safetensors``."""
    import open_clip
    from safetensors import SafetensorError

    name, _, pretrained = spec.partition(":")
    if not pretrained and Path(name).is_file():
        if Path(name).suffix != ".safetensors":
            raise BaseModelError(f"--clip {spec}: only .safetensors checkpoints are loaded (nothing is unpickled); "
                                 "pass NAME:/path/model.safetensors or the folder of an open_clip model")
        raise BaseModelError(f"--clip {spec}: a checkpoint needs its model's name, e.g. ViT-B-32:{spec}")
    if not pretrained and ("/" in name or name.startswith(".")) and not name.startswith("hf-hub"):
        raise BaseModelError(f"--clip {spec}: no such folder (a CLIP folder holds {FOLDER_CONFIG} and "
                             "open_clip_model.safetensors)")
    if pretrained and Path(pretrained).suffix not in ("", ".safetensors") and Path(pretrained).exists():
        raise BaseModelError(f"--clip {spec}: only .safetensors checkpoints are loaded (nothing is unpickled)")
    if (pretrained and not Path(pretrained).exists()) or name.startswith("hf-hub:"):
        offline_unless_reachable(spec)  # a pretrained tag or hf-hub: name is fetched through the Hub
    try:
        model, _, preprocess = open_clip.create_model_and_transforms(name, pretrained=pretrained or None)
    except SafetensorError as damaged:
        raise BaseModelError(f"--clip {spec}: {pretrained} is not a complete safetensors file ({damaged}); copy it "
                             "again") from None
    except (RuntimeError, OSError, ValueError) as exc:
        raise BaseModelError(
            f"cannot load CLIP {spec!r} ({type(exc).__name__}: {str(exc).splitlines()[0][:160]}); pass demo, "
            "a folder with open_clip_config.json and open_clip_model.safetensors, NAME:/path/model.safetensors, "
            "or NAME:PRETRAINED (e.g. ViT-B-32:openai) when it is cached or online"
        ) from None
    return model, preprocess, open_clip.get_tokenizer(name)


def _load_folder(folder: Path, spec: str) -> tuple[Any, Any, Any]:
    """An open_clip model saved the way the Hub holds them: its config and a safetensors checkpoint."""
    import open_clip
    from safetensors import SafetensorError

    if not (folder / FOLDER_CONFIG).is_file():
        hint = (f"rebuild it: python -m lorakit_caption.make_clip --out {folder}" if spec == "demo" else
                "a CLIP folder is an open_clip model as the Hugging Face Hub holds it (e.g. "
                "laion/CLIP-ViT-B-32-laion2B-s34B-b79K): open_clip_config.json beside open_clip_model.safetensors")
        raise BaseModelError(f"--clip {spec}: {folder} has no {FOLDER_CONFIG}; {hint}")
    weights = next((folder / n for n in FOLDER_WEIGHTS if (folder / n).is_file()), None)
    if weights is None:
        found = sorted(p.name for p in folder.iterdir() if p.suffix in (".bin", ".pt", ".pth", ".safetensors"))
        raise BaseModelError(
            f"--clip {spec}: {folder} has no {' or '.join(FOLDER_WEIGHTS)}"
            + (f" (it holds {', '.join(found)}; only .safetensors checkpoints are loaded, nothing is unpickled)"
               if found else "")
        )
    # open_clip would pick the folder's checkpoint itself, pickles included: build it empty, load the safetensors.
    source = f"local-dir:{folder}"
    try:
        logging.disable(logging.WARNING)  # open_clip warns "initialized randomly": the weights load next
        try:
            model, _, preprocess = open_clip.create_model_and_transforms(source, load_weights=False,
                                                                         pretrained_text=False)
        finally:
            logging.disable(logging.NOTSET)
        open_clip.load_checkpoint(model, str(weights))
        tokenizer = open_clip.get_tokenizer(source)
    except SafetensorError as damaged:
        raise BaseModelError(f"--clip {spec}: {weights} is not a complete safetensors file ({damaged}); copy the "
                             "folder again") from None
    except (RuntimeError, OSError, ValueError, KeyError) as exc:
        raise BaseModelError(
            f"--clip {spec}: cannot load the CLIP in {folder} ({type(exc).__name__}: "
            f"{str(exc).splitlines()[0][:160]}); its {FOLDER_CONFIG} and {weights.name} must describe one model"
        ) from None
    return model, preprocess, tokenizer


def _cuda() -> bool:
    import torch

    return torch.cuda.is_available()
