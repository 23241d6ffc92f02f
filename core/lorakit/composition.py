"""The composition report: whether adapters mixed at weights still do their
own jobs, before the mix ships.

Each adapter's own held-out examples (its run's test split, or ``--data``)
are evaluated with the base, with that adapter alone at its given weight, and
with every adapter combined at its weight. The base is loaded once and every
adapter goes into it unmerged (``lorakit.merge.load_several``); a variant is
the same model with other adapters active and scaled (``merge.weighted``),
which equals the weighted merge ``lorakit predict --adapter A:w --adapter B:w``
builds up to float rounding.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Sequence

from lorakit.apply import AdapterSpec, check_composable, load_base, read_adapters
from lorakit.errors import ConfigError
from lorakit.evaluation import scores_of
from lorakit.run_data import Splits
from lorakit.run_folder import CONFIG_FILE
from lorakit.runs import held_out, make_task, require_held_out_paths
from lorakit.task import Base, Task

#: What the columns mean, for the table and the JSON alike.
NOTE = ("alone: each adapter by itself at its given weight; combined: all the adapters at their weights; "
        "each adapter's rows are measured on its own held-out examples")


@dataclass
class Composition:
    """A base with several adapters loaded unmerged, ready to switch among
    the base, each adapter alone and all combined."""

    base: Base
    base_fingerprint: str
    model: Any
    adapters: list[AdapterSpec]
    #: peft's name of each adapter, in the order of ``adapters``.
    names: list[str]
    #: Each adapter's task, with the options it was trained with.
    tasks: list[Task] = field(default_factory=list)

    def weights(self, which: int | None = None) -> dict[str, float]:
        """peft name -> weight of adapter ``which`` alone, or (None) of all."""
        chosen = range(len(self.adapters)) if which is None else [which]
        return {self.names[i]: self.adapters[i].weight for i in chosen}

    @contextlib.contextmanager
    def variant(self, weights: dict[str, float]) -> Iterator[Any]:
        """The model with exactly ``weights`` active (empty: the base)."""
        from lorakit.merge import weighted

        with weighted(self.model, weights) as model:
            yield model


def open_composition(adapters: Sequence[AdapterSpec], base_name: str | None = None,
                     ignore_base_mismatch: bool = False) -> Composition:
    """The first adapter's base (or ``base_name``), loaded once, each adapter
    checked against it and loaded unmerged, on the GPU when there is one."""
    from lorakit.artifact import check_base
    from lorakit.config import RunConfig
    from lorakit.device import inference_device
    from lorakit.fingerprints import base_fingerprint
    from lorakit.merge import load_several
    from lorakit.threads import configure as configure_threads

    check_composable(adapters, same_base=not ignore_base_mismatch)
    task_name = adapters[0].manifest.task
    tasks = [make_task(RunConfig(task=task_name, options=dict(spec.manifest.options))) for spec in adapters]
    base = load_base(tasks[0], base_name or adapters[0].manifest.base)
    base_print = base_fingerprint(base, task_name)
    if not ignore_base_mismatch:
        for spec in adapters:
            check_base(spec.manifest, base_print, spec.path, task_name)
    for task in tasks:  # each adapter's options fitted to the base, as opening it alone does
        task.prepare_base(base, None)
    model, names = load_several(base.model, [spec.path for spec in adapters])
    model.eval().to(inference_device())
    configure_threads()
    return Composition(base, base_print, model, list(adapters), names, tasks)


def composition_report(adapters: Sequence[tuple[str | Path, float]], data: str | None = None,
                       retain: str | None = None, base_name: str | None = None,
                       ignore_base_mismatch: bool = False) -> dict[str, Any]:
    """Base / alone / combined / change per adapter, split and metric, each
    adapter on its own held-out examples (its run's, or ``data``; ``retain``
    as ``lorakit evaluate`` takes it). Refuses adapters of different tasks or
    bases, and adapter folders without their run's config when no ``data``
    is given, before any model loads."""
    if not adapters:
        raise ConfigError("a composition report needs adapters: --adapter RUN[:WEIGHT], repeated")
    specs = read_adapters(adapters)
    check_composable(specs, same_base=not ignore_base_mismatch)
    run_dirs = [run_folder(given) for given, _ in adapters]
    missing = [str(given) for (given, _), run_dir in zip(adapters, run_dirs) if run_dir is None]
    if missing and not data and not retain:
        raise ConfigError(f"{missing[0]} has no {CONFIG_FILE} of its run beside it, so its held-out examples are "
                          "unknown: pass --data DIR (examples every adapter is evaluated on)")
    for run_dir in run_dirs:
        require_held_out_paths(run_dir, data, retain)
    composition = open_composition(specs, base_name, ignore_base_mismatch)
    splits = [held_out(task, composition.base, run_dir, data, retain)
              for task, run_dir in zip(composition.tasks, run_dirs)]
    return compare(composition, splits, [str(given) for given, _ in adapters])


def run_folder(given: str | Path) -> Path | None:
    """The run folder holding an adapter's config.yaml: the folder given, or
    the run around a given ``adapter/`` folder; None for a lone adapter."""
    given = Path(given)
    for folder in (given, given.parent if given.name == "adapter" else None):
        if folder is not None and (folder / CONFIG_FILE).is_file():
            return folder
    return None


def compare(composition: Composition, splits: Sequence[Splits], labels: Sequence[str] | None = None) -> dict[str, Any]:
    """The report of an opened composition on each adapter's ``splits``
    (``labels`` name the adapters; their folders by default)."""
    import torch

    labels = list(labels) if labels is not None else [str(spec.path) for spec in composition.adapters]
    entries = []
    for i, (spec, task, held) in enumerate(zip(composition.adapters, composition.tasks, splits)):
        entry: dict[str, Any] = {"adapter": labels[i], "path": str(Path(spec.path).resolve()), "weight": spec.weight,
                                 "splits": {}}
        variants = {"base": {}, "alone": composition.weights(i), "combined": composition.weights()}
        for split, examples in (("test", held.test), ("retain", held.retain_test)):
            if not examples:
                continue
            scores: dict[str, Any] = {"examples": len(examples)}
            for variant, weights in variants.items():
                with composition.variant(weights) as model, torch.inference_mode():
                    scores[variant] = scores_of(task, task.evaluate(composition.base, model, examples))
            scores["change"] = {metric: scores["combined"][metric] - value for metric, value in scores["alone"].items()
                                if metric in scores["combined"]}
            entry["splits"][split] = scores
        entries.append(entry)
    task = composition.tasks[0]
    mix = [{"adapter": label, "weight": spec.weight} for label, spec in zip(labels, composition.adapters)]
    return {"task": task.name, "base": composition.base.name, "metrics": task.metric_directions(), "combined": mix,
            "adapters": entries, "note": NOTE}
