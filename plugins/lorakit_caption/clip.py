"""CLIPScore with open_clip: how well a caption fits its image, without references.

CLIPScore = 2.5 * max(cos(image, text), 0) (Hessel et al., 2021). The model is
any open_clip model a user has: ``NAME:PRETRAINED`` (e.g. ``ViT-B-32:openai``,
fetched by open_clip when online), a local ``.safetensors`` checkpoint with
``--clip NAME:/path/model.safetensors``, or ``demo``: a tiny CLIP trained by
``python -m lorakit_caption.make_clip`` on the caption samples.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from lorakit.api import BaseModelError, offline_unless_reachable, open_rgb

DEMO_CLIP = Path(__file__).parent / "demo_clip"
DEMO_NAME = "lorakit-demo-clip"
WEIGHT = 2.5


@dataclass
class ClipScorer:
    name: str
    model: Any
    preprocess: Any
    tokenizer: Any

    @classmethod
    def load(cls, spec: str) -> "ClipScorer":
        import open_clip

        if spec == "demo":
            if not (DEMO_CLIP / f"{DEMO_NAME}.json").is_file():
                raise BaseModelError(f"the demo CLIP is missing from {DEMO_CLIP}; rebuild it: "
                                     f"python -m lorakit_caption.make_clip --out {DEMO_CLIP}")
            open_clip.add_model_config(DEMO_CLIP / f"{DEMO_NAME}.json")
            name, pretrained = DEMO_NAME, str(DEMO_CLIP / "model.safetensors")
        else:
            name, _, pretrained = spec.partition(":")
        if pretrained and Path(pretrained).suffix not in ("", ".safetensors") and Path(pretrained).exists():
            raise BaseModelError(f"--clip {spec}: only .safetensors checkpoints are loaded (nothing is unpickled)")
        if (pretrained and not Path(pretrained).exists()) or name.startswith("hf-hub:"):
            offline_unless_reachable(spec)  # a pretrained tag or hf-hub: name is fetched through the Hub
        try:
            model, _, preprocess = open_clip.create_model_and_transforms(name, pretrained=pretrained or None)
        except (RuntimeError, OSError, ValueError) as exc:
            raise BaseModelError(
                f"cannot load CLIP {spec!r} ({type(exc).__name__}: {str(exc).splitlines()[0][:160]}); pass demo, "
                "NAME:/path/model.safetensors, or NAME:PRETRAINED (e.g. ViT-B-32:openai) when it is cached or online"
            ) from None
        device = "cuda" if _cuda() else "cpu"
        return cls(spec, model.eval().to(device), preprocess, open_clip.get_tokenizer(name))

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


def _cuda() -> bool:
    import torch

    return torch.cuda.is_available()
