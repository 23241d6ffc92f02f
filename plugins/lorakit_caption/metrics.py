"""BLEU-4 and CIDEr of generated captions: the caption task's metrics (and
the ones ``lorakit caption`` output is scored with in tests).

The scorers are pycocoevalcap's. Its PTB tokenizer needs Java, so captions are
normalised here instead: lowercase, punctuation dropped, whitespace collapsed.
Scores are therefore close to, but not identical with, COCO leaderboard
numbers.

CIDEr weighs n-grams by how rare they are across the references of the whole
evaluation set (tf-idf), so it needs several images to mean anything: an
n-gram found in every reference weighs nothing, and a set of one image always
scores 0. Its scale runs from 0 to about 10 (a perfect match of distinctive
captions).
"""

from __future__ import annotations

import re
from typing import Sequence

_NOT_WORD = re.compile(r"[^\w\s]")


def normalize_caption(text: str) -> str:
    """Lowercase, replace punctuation with spaces, and collapse whitespace."""
    return " ".join(_NOT_WORD.sub(" ", text.lower()).split())


def caption_scores(predictions: Sequence[str], references: Sequence[Sequence[str]]) -> dict[str, float]:
    """Corpus BLEU-4 and CIDEr of ``predictions``, one per image, against
    ``references``: one list of reference captions (one or more) per image.

    Returns ``{"cider": ..., "bleu4": ...}``; both are 0.0 for an empty set.
    """
    if len(predictions) != len(references):
        raise ValueError(f"{len(predictions)} predictions for {len(references)} reference lists")
    if not predictions:
        return {"cider": 0.0, "bleu4": 0.0}
    from pycocoevalcap.bleu.bleu import Bleu
    from pycocoevalcap.cider.cider import Cider

    res, gts = {}, {}
    for i, (prediction, refs) in enumerate(zip(predictions, references)):
        if not refs:
            raise ValueError(f"image {i} has no reference caption")
        # An empty hypothesis would break BLEU's length ratio; a lone
        # placeholder scores zero n-gram matches just the same.
        res[i] = [normalize_caption(prediction) or "<empty>"]
        gts[i] = [normalize_caption(ref) for ref in refs]
    cider, _ = Cider().compute_score(gts, res)
    bleu, _ = Bleu(4).compute_score(gts, res, verbose=0)
    # Rounded so that "no match" reads 0.0 rather than BLEU's smoothed 1e-14.
    return {"cider": round(float(cider), 6), "bleu4": round(float(bleu[3]), 6)}
