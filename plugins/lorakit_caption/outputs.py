"""Where batch captions go, so that a run can be killed at any moment and resumed.

Records are order-independent (each names its image) and appended in batches,
each batch flushed and fsynced. A kill can leave at most a torn last line;
opening the file for a resume cuts it off, so every image is captioned
exactly once across runs.

* ``jsonl``: one JSON record per line (caption plus provenance);
* ``csv``: the same fields as columns (adapters and generation as JSON text);
* ``sidecar``: ``image.txt`` next to each image (the kohya / Stable Diffusion
  dataset convention), plus the JSONL ledger at ``--out`` that records
  provenance and what is done.
"""

from __future__ import annotations

import csv
import io
import json
import os
from pathlib import Path
from typing import Any

from lorakit.api import OutputError

FORMATS = ("jsonl", "csv", "sidecar")
CSV_FIELDS = ("image", "caption", "clip_score", "base", "base_fingerprint", "adapters", "generation")


class RecordFile:
    """An append-only file of records, opened fresh or for a resume."""

    def __init__(self, path: Path, resume: bool, kind: str = "jsonl"):
        self.path, self.kind = Path(path), kind
        if self.path.exists() and not resume:
            raise OutputError(f"{self.path} already exists; pass --resume to caption only what is missing, "
                              "or choose another --out")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.done: set[str] = self._recover() if self.path.exists() else set()
        self._handle = open(self.path, "a", encoding="utf-8", newline="")
        if kind == "csv" and self.path.stat().st_size == 0:
            self._handle.write(_csv_line(CSV_FIELDS))

    def _recover(self) -> set[str]:
        """Images already done; a torn last line (killed mid-write) is cut off."""
        data = self.path.read_bytes()
        if data and not data.endswith(b"\n"):
            data = data[: data.rfind(b"\n") + 1]
            with open(self.path, "r+b") as handle:
                handle.truncate(len(data))
        text = data.decode("utf-8")
        if self.kind == "csv":
            return {row["image"] for row in csv.DictReader(io.StringIO(text))}
        return {json.loads(line)["image"] for line in text.splitlines() if line.strip()}

    def append(self, records: list[dict[str, Any]]) -> None:
        if not records:
            return
        if self.kind == "csv":
            text = "".join(_csv_line([_cell(r.get(f)) for f in CSV_FIELDS]) for r in records)
        else:
            text = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records)
        self._handle.write(text)
        self._handle.flush()
        os.fsync(self._handle.fileno())
        self.done.update(r["image"] for r in records)

    def close(self) -> None:
        self._handle.close()


def write_sidecar(image: str, caption: str) -> None:
    """``image.txt`` beside the image, written whole or not at all."""
    target = Path(image).with_suffix(".txt")
    tmp = target.with_name(f".{target.name}.tmp-{os.getpid()}")
    tmp.write_text(caption + "\n", encoding="utf-8")
    os.replace(tmp, target)


def _csv_line(values) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerow(values)
    return buffer.getvalue()


def _cell(value: Any) -> str:
    if value is None:
        return ""
    return json.dumps(value) if isinstance(value, (list, dict)) else str(value)
