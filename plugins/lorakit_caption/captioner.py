"""The model side of batch captioning: a base with its adapters merged once,
on the GPU in bf16 when there is one, and the provenance every record carries."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lorakit.errors import ConfigError


@dataclass
class Captioner:
    task: Any
    base: Any
    model: Any
    prefix: str
    provenance: dict[str, Any]
    clip: Any = None
    candidates: int = 1

    @property
    def image_processor(self) -> Any:
        return self.base.processor.image_processor

    def caption(self, paths: list[str], pixels: Any) -> list[dict[str, Any]]:
        """One record per image: the caption (the CLIP-best candidate when
        re-ranking), its CLIPScore when a CLIP model is given, and provenance."""
        import torch

        device = next(self.model.parameters()).device
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
            candidates = self.task.caption_pixels(self.base, self.model, pixels, self.prefix, self.candidates)
        if self.clip is None:
            return [{"image": p, "caption": c[0], **self.provenance} for p, c in zip(paths, candidates)]
        records = []
        for path, options, scores in zip(paths, candidates, self.clip.score_candidates(paths, candidates)):
            best = max(range(len(options)), key=lambda i: scores[i])
            records.append({"image": path, "caption": options[best], "clip_score": round(scores[best], 4), **self.provenance})
        return records


def load_captioner(job: Any) -> Captioner:
    """Load the base, check and merge the job's adapters, pick the device."""
    import torch

    from lorakit.adapters import check_base, file_fingerprint, fingerprint, merge_weighted, read_manifest, resolve_adapter_dir
    from lorakit.runs import load_base

    from lorakit_caption.task import CaptionOptions, CaptionTask

    adapters = [(resolve_adapter_dir(path), weight) for path, weight in job.adapters]
    manifests = [read_manifest(path) for path, _ in adapters]
    trigger = job.trigger if job.trigger is not None else next((m.trigger_words[0] for m in manifests if m.trigger_words), "")
    task = CaptionTask(CaptionOptions(trigger=trigger, prompt=job.prompt, max_new_tokens=job.max_new_tokens,
                                      num_beams=job.num_beams))
    base = load_base(task, job.base or (manifests[0].base if manifests else "demo"))
    base_print = fingerprint(base.model)
    if not job.ignore_base_mismatch:
        for (path, _), manifest in zip(adapters, manifests):
            check_base(manifest, base_print, path, task.name)
    model = merge_weighted(base.model, adapters) if adapters else base.model
    model.eval().to("cuda" if torch.cuda.is_available() else "cpu")
    clip = None
    if job.rerank or job.clip:
        from lorakit_caption.clip import ClipScorer

        clip = ClipScorer.load(job.clip or "demo")
    if job.rerank not in (None, "clip"):
        raise ConfigError(f"--rerank {job.rerank!r} is unknown; the only re-ranker is clip")
    provenance = {
        "base": base.name,
        "base_fingerprint": base_print,
        "adapters": [{"path": str(path), "weight": weight, "fingerprint": file_fingerprint(Path(path) / "adapter_model.safetensors")}
                     for path, weight in adapters],
        "generation": {"num_beams": job.num_beams, "max_new_tokens": job.max_new_tokens, "prompt": job.prompt,
                       "trigger": trigger, "rerank": job.rerank, "candidates": job.candidates if job.rerank else 1,
                       "clip": clip.name if clip else None},
    }
    return Captioner(task, base, model, task.prefix(), provenance, clip, job.candidates if job.rerank else 1)
