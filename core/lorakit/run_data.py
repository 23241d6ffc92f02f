"""The data of a run: read and validated by the task, split into training,
validation and held-out parts, plus the retain set of the base's old domain."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lorakit.capabilities import CommandLineInputs
from lorakit.config import DATA_PATHS, RunConfig
from lorakit.data.splits import split_examples
from lorakit.errors import DataError, PluginError
from lorakit.task import Base, Data, Task


@dataclass
class Splits:
    train: list[Any]
    val: list[Any]
    test: list[Any]
    #: Retain examples replayed in training, and those held out to measure forgetting.
    replay_pool: list[Any] = field(default_factory=list)
    retain_test: list[Any] = field(default_factory=list)
    #: The task's summary of the training data folder.
    summary: dict[str, Any] = field(default_factory=dict)

    def describe(self) -> dict[str, Any]:
        """The data summary for the manifest, with the split sizes."""
        sizes = {"train": len(self.train), "validation": len(self.val), "test": len(self.test)}
        if self.replay_pool or self.retain_test:
            sizes.update(retain_replayed=len(self.replay_pool), retain_test=len(self.retain_test))
        return {**self.summary, "splits": sizes}


def load_splits(task: Task, base: Base, config: RunConfig, with_retain: bool = True) -> Splits:
    """Train/validation/held-out splits (and the retain set, unless not
    ``with_retain``), read and validated.

    Without ``data.eval_path``, ``data.test_fraction`` of the data is held
    out, then ``data.val_fraction`` of it validates. The split is seeded by
    ``data.split_seed``, else by ``train.seed``.
    """
    seed = split_seed(config)
    data = read_data(task, base, config.data.path, "data.path")
    if config.data.eval_path:
        test = read_data(task, base, config.data.eval_path, "data.eval_path").examples
        val, train = split_examples(data.examples, [config.data.val_fraction], seed)
    else:
        test, val, train = split_examples(data.examples, [config.data.test_fraction, config.data.val_fraction], seed)
    if config.data.max_examples:
        train = train[: config.data.max_examples]
    splits = Splits(train, val, test, summary=dict(data.summary))
    if with_retain and config.data.retain:
        splits.retain_test, splits.replay_pool = read_retain(task, base, config)
    return splits


def read_retain(task: Task, base: Base, config: RunConfig) -> tuple[list[Any], list[Any]]:
    """The retain set's held-out and replayed examples: all held out, unless
    ``data.replay`` is set: then half of it (by group) is replayed and the
    other half measures forgetting."""
    retain = read_data(task, base, config.data.retain, "data.retain", role="retain").examples
    if config.data.replay > 0:
        held, replayed = split_examples(retain, [0.5], split_seed(config))
        return held, replayed
    return retain, []


def split_seed(config: RunConfig) -> int:
    return config.train.seed if config.data.split_seed is None else config.data.split_seed


def read_data(task: Task, base: Base, path: str, field_name: str, role: str = "data") -> Data:
    """The task's ``Data`` of ``path``, refused when it holds no examples."""
    data = task.load_data(Path(path), base, role=role)
    if not isinstance(data, Data):
        raise PluginError(f"task {task.name!r}: load_data must return lorakit.api.Data(examples, summary), not "
                          f"{type(data).__name__}")
    if not data.examples:
        raise DataError(f"{path} ({field_name}) holds no examples")
    return data


def require_data_paths(task: Task, config: RunConfig) -> None:
    """Refuse a data path of ``config`` that does not exist, before any base
    loads: a mistyped folder is said in a second, not after the model's load.
    What a folder holds is the task's to check, when it reads the data."""
    aliases = task.aliases if isinstance(task, CommandLineInputs) else {}
    for key in DATA_PATHS:
        field_name = f"data.{key}"
        flags = [f"--{flag}" for flag, target in aliases.items() if target == field_name]
        require_path(getattr(config.data, key), ", ".join([field_name, *flags]), f"{task.name} examples")


def require_path(path: str | None, label: str, what: str) -> None:
    """``DataError`` naming ``label`` (the field or flag) when ``path`` is
    given but missing; ``what`` says what it should hold."""
    if path and not os.path.exists(path):  # as the task reads it: "~" is the shell's to expand
        raise DataError(f"{path} ({label}) does not exist; pass the folder (or file) of {what}")
