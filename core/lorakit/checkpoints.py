"""Resumable checkpoints: trainable weights, optimizers, schedulers, RNG and data position.

Written to a temporary folder and renamed, so a crash keeps the previous one
(``lorakit.atomic``); ``state.json`` is written last, so a folder that has it
is complete. Reading one first puts back a copy a crash left mid-swap.
Weights are safetensors; the optimizer/RNG file is read with ``weights_only``.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

from lorakit.atomic import atomic_dir, recover
from lorakit.errors import TrainingError
from lorakit.lora import load_trainable_state, trainable_state
from lorakit.torch_files import load_tensors

WEIGHTS = "trainable.safetensors"
OPTIMIZERS = "trainer_state.pt"
STATE = "state.json"


def capture_rng() -> dict[str, Any]:
    import numpy as np
    import torch

    kind, keys, pos, has_gauss, cached = np.random.get_state()
    rng = {
        "python": random.getstate(),
        "numpy": [kind, torch.from_numpy(keys.astype("int64")), pos, has_gauss, cached],
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        rng["cuda"] = torch.cuda.get_rng_state_all()
    return rng


def restore_rng(rng: dict[str, Any]) -> None:
    import numpy as np
    import torch

    random.setstate(_as_tuples(rng["python"]))
    kind, keys, pos, has_gauss, cached = rng["numpy"]
    np.random.set_state((kind, keys.numpy().astype("uint32"), pos, has_gauss, cached))
    torch.set_rng_state(rng["torch"])
    if "cuda" in rng and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(rng["cuda"])


def _as_tuples(value: Any) -> Any:
    return tuple(_as_tuples(v) for v in value) if isinstance(value, (list, tuple)) else value


def save_checkpoint(path: Path, model: Any, optimizers: dict, schedulers: dict, state: dict[str, Any],
                    rng_by_rank: list[dict[str, Any]] | None = None, scaler: Any = None) -> None:
    """Everything needed to continue training exactly, in one atomic folder.
    ``rng_by_rank`` holds every process's generators (index = rank); by
    default this process's alone. ``scaler``: fp16's gradient scaler, whose
    scale would otherwise start again from its first (overflowing) value."""
    import torch
    from safetensors.torch import save_file

    with atomic_dir(Path(path), replace=True) as tmp:
        save_file(trainable_state(model), str(tmp / WEIGHTS))
        torch.save(
            {
                "optimizers": {k: o.state_dict() for k, o in optimizers.items()},
                "schedulers": {k: s.state_dict() for k, s in schedulers.items()},
                "rng": rng_by_rank if rng_by_rank is not None else [capture_rng()],
                "scaler": scaler.state_dict() if scaler is not None else None,
            },
            tmp / OPTIMIZERS,
        )
        (tmp / STATE).write_text(json.dumps(state, indent=2) + "\n", encoding="utf-8")


def load_checkpoint(path: Path, model: Any, optimizers: dict, schedulers: dict, rank: int = 0,
                    processes: int | None = None, scaler: Any = None) -> dict[str, Any]:
    """Restore a checkpoint written by ``save_checkpoint``, with the random
    generators process ``rank`` had; returns its loop state. A run of
    another number of ``processes`` is refused: its batches per step, its
    schedule and its place in the data would all be another run's."""
    path = Path(path)
    if not has_checkpoint(path):
        raise TrainingError(f"no checkpoint to resume in {path}; start a new run without --resume")
    load_weights(path, model)
    saved = load_tensors(path / OPTIMIZERS, TrainingError, fix="start a new run without --resume")
    for name, optimizer in optimizers.items():
        optimizer.load_state_dict(saved["optimizers"][name])
    for name, scheduler in schedulers.items():
        scheduler.load_state_dict(saved["schedulers"][name])
    rngs = saved["rng"] if isinstance(saved["rng"], list) else [saved["rng"]]  # one dict: a single-process run
    if rank >= len(rngs) or (processes is not None and processes != len(rngs)):
        launch = "as one process" if len(rngs) == 1 else f"with accelerate launch --num_processes {len(rngs)}"
        raise TrainingError(f"the checkpoint in {path} was written by {len(rngs)} process(es), and this is "
                            f"{processes or rank + 1}: resume it {launch}, or start a new run")
    if scaler is not None and saved.get("scaler"):
        scaler.load_state_dict(saved["scaler"])
    restore_rng(rngs[rank])
    return json.loads((path / STATE).read_text(encoding="utf-8"))


def has_checkpoint(path: Path) -> bool:
    """Whether ``path`` holds a complete checkpoint, once what a crash left
    there is cleared up (the previous copy renamed back, temporaries removed)."""
    recover(Path(path))
    return (Path(path) / STATE).is_file()


def checkpoint_step(path: Path) -> int | None:
    """The step of the complete checkpoint in ``path``, or None."""
    if not has_checkpoint(path):
        return None
    return json.loads((Path(path) / STATE).read_text(encoding="utf-8")).get("step")


def read_weights(path: Path) -> dict[str, Any]:
    """The trainable weights of a checkpoint folder (e.g. the best one)."""
    from safetensors.torch import load_file

    recover(Path(path))
    return load_file(str(Path(path) / WEIGHTS))


def load_weights(path: Path, model: Any) -> None:
    """Load only the trainable weights of a checkpoint into ``model``."""
    load_trainable_state(model, read_weights(path))


def save_weights(path: Path, weights: dict[str, Any], state: dict[str, Any]) -> None:
    """Save weights alone (the best checkpoint needs no optimizer)."""
    from safetensors.torch import save_file

    with atomic_dir(Path(path), replace=True) as tmp:
        save_file(weights, str(tmp / WEIGHTS))
        (tmp / STATE).write_text(json.dumps(state, indent=2) + "\n", encoding="utf-8")
