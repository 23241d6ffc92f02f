"""Deterministic held-out splits, so a run, its resume and a later evaluate agree."""

from __future__ import annotations

from typing import Any, Sequence


def split_examples(examples: Sequence[Any], fractions: Sequence[float], seed: int) -> list[list[Any]]:
    """Split ``examples`` into ``len(fractions) + 1`` parts: one per fraction, then the rest.

    The order is a permutation seeded by ``seed``; a non-zero fraction always
    gets at least one example when there are enough to go round. Examples
    with a ``group`` attribute (the windows of one music track, the questions
    about one image) are split by group, so a group never lands in two parts
    and held-out data stays unseen; the fractions then count groups. Examples
    with a ``label`` attribute are split within each label (stratified), so
    every part keeps the classes in proportion.
    """
    groups: dict[Any, list[Any]] = {}
    for index, example in enumerate(examples):
        groups.setdefault(getattr(example, "group", None) or ("example", index), []).append(example)
    strata: dict[Any, list[Any]] = {}
    for key, members in groups.items():
        strata.setdefault(_label(members[0]), []).append(key)
    parts: list[list[Any]] = [[] for _ in range(len(fractions) + 1)]
    for number, (_, keys) in enumerate(sorted(strata.items(), key=lambda item: repr(item[0]))):
        for part, chosen in zip(parts, _split_keys(keys, fractions, seed + number)):
            part.extend(e for key in chosen for e in groups[key])
    return parts


def _label(example: Any) -> Any:
    label = getattr(example, "label", None)
    return label if isinstance(label, (str, int, bool)) else None


def _split_keys(keys: list[Any], fractions: Sequence[float], seed: int) -> list[list[Any]]:
    import numpy as np

    order = np.random.default_rng(seed).permutation(len(keys))
    parts, start = [], 0
    for fraction in fractions:
        n = round(len(keys) * fraction)
        if fraction > 0 and n == 0 and len(keys) - start > 1:
            n = 1
        parts.append([keys[i] for i in order[start : start + n]])
        start += n
    parts.append([keys[i] for i in order[start:]])
    return parts
