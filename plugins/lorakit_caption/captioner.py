"""The model side of batch captioning: a base with its adapters merged once,
on the GPU in bf16 when there is one, and the provenance every record carries."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from lorakit.api import ConfigError, device_and_dtype, open_with_adapters, read_adapters


@dataclass
class Captioner:
    task: Any
    base: Any
    model: Any
    prefix: str
    provenance: dict[str, Any]
    clip: Any = None
    candidates: int = 1
    #: Text written before / after every caption (``--prefix``, ``--suffix``).
    text_before: str = ""
    text_after: str = ""

    @property
    def image_processor(self) -> Any:
        return self.base.processor.image_processor

    def caption(self, paths: list[str], pixels: Any) -> list[dict[str, Any]]:
        """One record per image: the caption (the CLIP-best candidate when
        re-ranking), whether the model ended it (``finish_reason``: ``stop``)
        or the length cap cut it (``length``), its CLIPScore when a CLIP
        model is given, and provenance."""
        import torch

        device, _ = device_and_dtype(self.model)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
            generated = self.task.caption_pixels(self.base, self.model, pixels, self.prefix, self.candidates)
        if self.clip is None:
            records = [{"image": p, "caption": self._written(options[0].text),
                        "finish_reason": options[0].finish_reason, **self.provenance}
                       for p, options in zip(paths, generated)]
        else:
            candidates = [[g.text for g in options] for options in generated]
            records = []
            for path, options, scores in zip(paths, generated, self.clip.score_candidates(paths, candidates)):
                best = max(range(len(options)), key=lambda i: scores[i])
                records.append({"image": path, "caption": self._written(options[best].text),
                                "finish_reason": options[best].finish_reason, "clip_score": round(scores[best], 4),
                                **self.provenance})
        return records

    def _written(self, caption: str) -> str:
        return f"{self.text_before}{caption}{self.text_after}"


def load_captioner(job: Any) -> Captioner:
    """Load the base, check and merge the job's adapters, pick the device."""
    from lorakit_caption.task import CaptionOptions, CaptionTask

    if job.rerank not in (None, "clip"):
        raise ConfigError(f"--rerank {job.rerank!r} is unknown; the only re-ranker is clip")
    adapters = read_adapters(job.adapters)
    trigger = job.trigger if job.trigger is not None else next(
        (a.manifest.trigger_words[0] for a in adapters if a.manifest and a.manifest.trigger_words), "")
    task = CaptionTask(CaptionOptions(trigger=trigger, prompt=job.prompt, max_new_tokens=job.max_new_tokens,
                                      num_beams=job.num_beams))
    adapted = open_with_adapters(task, adapters, job.base, ignore_base_mismatch=job.ignore_base_mismatch)
    clip = None
    if job.rerank or job.clip:
        from lorakit_caption.clip import ClipScorer

        clip = ClipScorer.load(job.clip or "demo")
    # Caption files for training another model (kohya convention) start with
    # the trigger word: "sks, a red mug". Records of the other formats hold the
    # caption alone unless --prefix says otherwise.
    before = job.prefix if job.prefix is not None else (f"{trigger}, " if trigger and job.format == "sidecar" else "")
    provenance = {
        **adapted.provenance(),  # base, base_fingerprint, adapters: [{path, weight, fingerprint}]
        "generation": {"num_beams": job.num_beams, "max_new_tokens": job.max_new_tokens, "prompt": job.prompt,
                       "trigger": trigger, "rerank": job.rerank, "candidates": job.candidates if job.rerank else 1,
                       "clip": clip.name if clip else None, "prefix": before, "suffix": job.suffix},
    }
    return Captioner(task, adapted.base, adapted.model, task.prefix(), provenance, clip,
                     job.candidates if job.rerank else 1, before, job.suffix)
