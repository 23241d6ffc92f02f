"""Metrics of a run: one JSON line per event in log.jsonl, and TensorBoard scalars."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any


class RunLog:
    """Appends to ``log.jsonl`` (flushed per line, so a crash keeps what was logged)
    and mirrors numbers to TensorBoard event files in ``tb/``."""

    def __init__(self, run_dir: Path, enabled: bool = True):
        self.enabled = enabled
        self._file = None
        self._tb = None
        if enabled:
            run_dir.mkdir(parents=True, exist_ok=True)
            self._file = open(run_dir / "log.jsonl", "a", encoding="utf-8")
            from torch.utils.tensorboard import SummaryWriter

            self._tb = SummaryWriter(str(run_dir / "tb"))

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
