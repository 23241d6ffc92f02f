"""Deterministic held-out splits, so a run, its resume and a later evaluate agree."""

from __future__ import annotations

from typing import Any, Sequence


def split_examples(examples: Sequence[Any], fractions: Sequence[float], seed: int) -> list[list[Any]]:
    """Split ``examples`` into ``len(fractions) + 1`` parts: one per fraction, then the rest.

    The order is a permutation seeded by ``seed``; a non-zero fraction always
    gets at least one example when there are enough to go round. Examples
    with a ``group`` attribute (e.g. the windows of one music track) are split
    by group, so a group never lands in two parts and held-out data stays
    unseen; the fractions then count groups.
    """
    import numpy as np

    groups: dict[Any, list[Any]] = {}
    for index, example in enumerate(examples):
        groups.setdefault(getattr(example, "group", None) or ("example", index), []).append(example)
    keys = list(groups)
    order = np.random.default_rng(seed).permutation(len(keys))
    parts, start = [], 0
    for fraction in fractions:
        n = round(len(keys) * fraction)
        if fraction > 0 and n == 0 and len(keys) - start > 1:
            n = 1
        parts.append([e for i in order[start : start + n] for e in groups[keys[i]]])
        start += n
    parts.append([e for i in order[start:] for e in groups[keys[i]]])
    return parts
