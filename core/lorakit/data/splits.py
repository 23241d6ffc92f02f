"""Deterministic held-out splits, so a run, its resume and a later evaluate agree."""

from __future__ import annotations

from typing import Any, Sequence


def split_examples(examples: Sequence[Any], fractions: Sequence[float], seed: int) -> list[list[Any]]:
    """Split ``examples`` into ``len(fractions) + 1`` parts: one per fraction, then the rest.

    The order is a permutation seeded by ``seed``; a non-zero fraction always
    gets at least one example when there are enough to go round.
    """
    import numpy as np

    order = np.random.default_rng(seed).permutation(len(examples))
    parts, start = [], 0
    for fraction in fractions:
        n = round(len(examples) * fraction)
        if fraction > 0 and n == 0 and len(examples) - start > 1:
            n = 1
        parts.append([examples[i] for i in order[start : start + n]])
        start += n
    parts.append([examples[i] for i in order[start:]])
    return parts
