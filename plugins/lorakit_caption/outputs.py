"""Where batch captions go, so that a run can be killed at any moment and resumed.

Records are order-independent (each names its image) and appended in batches,
each batch written whole and fsynced. A kill can leave at most a torn last
line; opening the file for a resume cuts it off, so every image is captioned
exactly once across runs. A write that fails (disk full, file-size limit) is
cut back to the last whole record before the error is raised.

* ``jsonl``: one JSON record per line (caption plus provenance);
* ``csv``: the same fields as columns (adapters and generation as JSON text);
* ``sidecar``: ``image.txt`` next to each image (the kohya / Stable Diffusion
  dataset convention), plus the JSONL ledger at ``--out`` that records
  provenance and what is done. A caption file is replaced atomically, never
  through a symbolic link, and only inside the folders the user named.
"""

from __future__ import annotations

import csv
import errno
import io
import json
import os
import stat
from pathlib import Path
from typing import Any

from lorakit.api import OutputError, image_stem

FORMATS = ("jsonl", "csv", "sidecar")
CSV_FIELDS = ("image", "caption", "finish_reason", "clip_score", "base", "base_fingerprint", "adapters", "generation")
#: What ``--existing`` does with a caption file that is already there.
EXISTING = ("skip", "overwrite", "append", "prepend")
#: How appended / prepended captions join the text already there: kohya tag lists are comma-separated.
SEPARATOR = ", "
#: What ``sidecar_blocker`` answers when ``--existing skip`` keeps the caption file that is there.
KEEP = "keep"


class RecordFile:
    """An append-only file of records, opened fresh or for a resume. A
    ``lazy`` one (the errors file) is created by its first record only, so a
    run without failures leaves no empty file behind."""

    def __init__(self, path: Path, resume: bool, kind: str = "jsonl", lazy: bool = False):
        self.path, self.kind = Path(path), kind
        if self.path.exists() and not resume:
            raise OutputError(f"{self.path} already exists; pass --resume to caption only what is missing, "
                              "or choose another --out")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        #: A CSV's columns: a resumed file keeps those of its header (one an older lorakit wrote has fewer).
        self.columns = CSV_FIELDS
        self.done: set[str] = self._recover() if self.path.exists() else set()
        self._fd: int | None = None
        if not lazy or self.path.exists():
            self._open()

    def _open(self) -> None:
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | _flag("O_BINARY"), 0o666)
        if self.kind == "csv" and os.fstat(self._fd).st_size == 0:
            self._write(_csv_line(self.columns))

    def _recover(self) -> set[str]:
        """Images already done; a torn last line (killed mid-write) is cut off."""
        data = self.path.read_bytes()
        whole = data[: data.rfind(b"\n") + 1]
        if len(whole) < len(data):
            with open(self.path, "r+b") as handle:
                handle.truncate(len(whole))
        if self.kind == "csv" and whole:  # the header line alone: the records are parsed below
            self.columns = tuple(next(csv.reader([whole[: whole.find(b"\n")].decode("utf-8", "replace")])))
        return {record["image"] for record in parse_records(self.path, whole, self.kind)}

    def append(self, records: list[dict[str, Any]]) -> None:
        if not records:
            return
        if self.kind == "csv":
            text = "".join(_csv_line([_cell(r.get(f)) for f in self.columns]) for r in records)
        else:
            text = json_lines(records)
        self._write(text)
        self.done.update(r["image"] for r in records)

    def _write(self, text: str) -> None:
        """All of ``text`` and fsynced, or (disk full, size limit) the file cut back to before it."""
        if self._fd is None:
            self._open()
        data, start = memoryview(text.encode("utf-8")), os.fstat(self._fd).st_size
        try:
            while data:
                data = data[os.write(self._fd, data):]
            os.fsync(self._fd)
        except OSError as exc:
            try:
                os.ftruncate(self._fd, start)  # shrinking is allowed past a size limit and on a full disk
            except OSError:
                pass  # the torn tail is then cut by the next --resume
            raise write_error(self.path, exc, "it is cut back to its last whole record") from None

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def json_lines(records: list[dict[str, Any]]) -> str:
    """``records`` as the JSON lines files of lorakit caption hold them."""
    return "".join(json.dumps(record, ensure_ascii=False) + "\n" for record in records)


def parse_records(path: Path, data: bytes, kind: str) -> list[dict[str, Any]]:
    """The records of ``data`` (whole lines of ``path``); a damaged line is an error naming it."""
    if kind == "csv":
        return _parse_csv(path, data)
    records = []
    for number, line in enumerate(data.split(b"\n")[:-1], start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError both are
            raise damaged_line(path, number, f"not a JSON record: {exc}") from None
        if not isinstance(record, dict) or not isinstance(record.get("image"), str):
            raise damaged_line(path, number, "a record without an image path")
        records.append(record)
    return records


def _parse_csv(path: Path, data: bytes) -> list[dict[str, Any]]:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise damaged_line(path, data.count(b"\n", 0, exc.start) + 1, "not UTF-8 text") from None
    reader = csv.DictReader(io.StringIO(text, newline=""), strict=True)
    rows, start = [], 1
    try:
        if reader.fieldnames is not None and "image" not in reader.fieldnames:
            raise damaged_line(path, 1, "the header has no image column")
        for row in reader:
            if None in row or None in row.values() or not row["image"]:
                raise damaged_line(path, start, f"expected {len(reader.fieldnames)} columns")
            rows.append(row)
            start = reader.line_num + 1
    except csv.Error as exc:
        raise damaged_line(path, start, f"not a CSV row: {exc}") from None
    return rows


def damaged_line(path: Path, number: int, why: str) -> OutputError:
    return OutputError(f"{path}, line {number} is damaged ({why}); only a torn last line is repaired on its own: "
                       f"fix or delete line {number}, then run the same command with --resume again")


def write_error(path: Path, exc: OSError, state: str) -> OutputError:
    """A failed write as one message: what limit was hit, where, what is left, and what to do."""
    reasons = {errno.EFBIG: "the file-size limit was hit (see `ulimit -f`)", errno.ENOSPC: "the disk is full",
               errno.EDQUOT: "the disk quota is used up"}
    reason = reasons.get(exc.errno, f"the write failed ({exc.strerror or exc})")
    return OutputError(f"cannot write {path}: {reason}; {state}. Free space or raise the limit, "
                       "then run the same command with --resume to caption what is missing")


# -- sidecar caption files -------------------------------------------------------


def sidecar_path(image: str) -> Path:
    stem = image_stem(image)
    return stem.with_name(stem.name + ".txt")


def sidecar_blocker(image: str, roots: list[Path], existing: str) -> str | None:
    """None when the caption file of ``image`` may be written, ``KEEP`` when
    ``--existing skip`` keeps the one there, else why it is not written."""
    target = sidecar_path(image)
    folder = Path(os.path.realpath(target.parent))
    if not any(folder.is_relative_to(root) for root in roots):
        return (f"its caption file would be written to {folder}, outside the folders given to lorakit caption "
                "(a folder on the way is a symbolic link); caption that folder itself to write there")
    if target.is_symlink():
        if existing == "skip" and target.exists():
            return KEEP
        return (f"{target} is a symbolic link; lorakit never writes through or replaces one: "
                "delete the link to let lorakit write a caption file there")
    if target.exists() and not target.is_file():
        return f"{target} exists and is not a file"
    return KEEP if existing == "skip" and target.exists() else None


def write_sidecar(image: str, caption: str, existing: str = "overwrite") -> Path:
    """``image.txt`` beside the image, written whole or not at all; an existing
    caption is replaced, or joined to the new one (``append`` / ``prepend``)."""
    target = sidecar_path(image)
    old = _read_text(target) if existing in ("append", "prepend") else ""
    _replace(target, joined(old, caption, existing) + "\n")
    return target


def joined(old: str, new: str, existing: str) -> str:
    """``old`` and ``new`` joined by ``SEPARATOR``; a caption already at that end is not added twice
    (so a run resumed after a crash between writing and recording never doubles it)."""
    old, new = old.strip(), new.strip()
    if existing not in ("append", "prepend") or not old:
        return new
    if not new:
        return old
    if existing == "append":
        return old if old == new or old.endswith(SEPARATOR + new) else old + SEPARATOR + new
    return old if old == new or old.startswith(new + SEPARATOR) else new + SEPARATOR + old


def _read_text(target: Path) -> str:
    try:
        fd = os.open(target, os.O_RDONLY | _flag("O_NOFOLLOW"))
    except FileNotFoundError:
        return ""
    except OSError as exc:
        raise OutputError(f"cannot read the caption file {target} ({exc.strerror}); it is left as it is") from None
    with open(fd, encoding="utf-8", errors="replace") as handle:
        return handle.read()


def _replace(target: Path, text: str) -> None:
    """Write a temporary file beside ``target`` and rename it over; never follows a link."""
    tmp = target.with_name(f".{target.name}.lorakit-tmp")
    try:
        tmp.unlink(missing_ok=True)  # left by a run killed mid-write
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _flag("O_NOFOLLOW") | _flag("O_BINARY"), 0o666)
        with open(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        if target.is_file() and not target.is_symlink():
            os.chmod(tmp, stat.S_IMODE(target.stat().st_mode))
        os.replace(tmp, target)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise write_error(target, exc, "it is left as it was") from None


def _flag(name: str) -> int:
    """An ``os.open`` flag this system has, else 0: Windows has no
    O_NOFOLLOW (a link there is followed), and only Windows has O_BINARY
    (without it, its C library turns each newline written into two bytes)."""
    return getattr(os, name, 0)


def _csv_line(values) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerow(values)
    return buffer.getvalue()


def _cell(value: Any) -> str:
    if value is None:
        return ""
    return json.dumps(value) if isinstance(value, (list, dict)) else str(value)
