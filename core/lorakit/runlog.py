"""Metrics of a run: one JSON line per event in log.jsonl, and TensorBoard scalars."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any


class RunLog:
    """Appends to ``log.jsonl`` (flushed per line, so a crash keeps what was logged)
    and mirrors numbers to TensorBoard event files in ``tb/``."""

    def __init__(self, run_dir: Path, enabled: bool = True, resumed_at: int | None = None):
        """``resumed_at``: the step of the checkpoint a resumed run continues
        from; what was logged after it (the steps it takes again, a torn last
        line) is dropped, so every step is in the log once."""
        self.enabled = enabled
        self._file = None
        self._tb = None
        if enabled:
            run_dir.mkdir(parents=True, exist_ok=True)
            path = run_dir / "log.jsonl"
            if resumed_at is not None and path.exists():
                _keep_until(path, resumed_at)
            self._file = open(path, "a", encoding="utf-8")
            from torch.utils.tensorboard import SummaryWriter

            purge = None if resumed_at is None else resumed_at + 1
            self._tb = SummaryWriter(str(run_dir / "tb"), purge_step=purge)

    def write(self, event: str, step: int, **values: Any) -> None:
        if not self.enabled:
            return
        record = {"event": event, "step": step, "time": round(time.time(), 3), **values}
        self._file.write(json.dumps(record, default=float) + "\n")
        self._file.flush()
        for key, value in values.items():
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                self._tb.add_scalar(f"{event}/{key}", value, step)

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._tb.close()
            self._file = self._tb = None


def _keep_until(path: Path, step: int) -> None:
    """Rewrite ``path`` with its whole records of steps up to ``step``."""
    from lorakit.atomic import atomic_write_text

    kept = []
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines(keepends=True):
        try:
            record = json.loads(line)
        except ValueError:
            continue  # a line torn by a crash or a full disk
        if line.endswith("\n") and isinstance(record, dict) and record.get("step", 0) <= step:
            kept.append(line)
    atomic_write_text(path, "".join(kept))
