"""Hugging Face datasets on disk: the rows of one split, and their images or audio.

Reads what a user has after downloading a dataset from the Hub (its
parquet files: ``data/train-00000-of-00002.parquet``, ``train/0000.parquet``,
``train.parquet``) or after ``Dataset.save_to_disk`` (``train/data-00000-of-
00001.arrow``), or one such file, through pyarrow. Images and recordings are
the datasets library's ``Image`` and ``Audio`` features (a struct of the
file's ``bytes`` and its ``path``), found by the feature type the files
record, or by that shape. ``import_split`` writes a split as a lorakit data
folder (the files, and a file of records); the caption, VQA and voice
plugins' import commands use it.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

from lorakit.errors import ConfigError, DataError

_SUFFIXES = (".parquet", ".arrow")
#: libsndfile's format names -> the suffix an extracted recording is written with.
_AUDIO_SUFFIXES = {"WAV": ".wav", "WAVEX": ".wav", "FLAC": ".flac", "OGG": ".ogg", "MP3": ".mp3", "AIFF": ".aiff"}


@dataclass
class Split:
    """One split's data files, and its columns with their datasets feature types."""

    name: str
    files: list[Path]
    features: dict[str, Any]  # column -> the datasets library's feature (or the Arrow type's name)
    rows: int


def open_split(source: Path, split: str) -> Split:
    """The files of ``split`` under ``source`` (a downloaded dataset folder,
    a ``save_to_disk`` folder, or one .parquet / .arrow file), refused with
    the splits there are when it has none of that name."""
    pyarrow = _pyarrow()
    source = Path(source)
    if not source.exists():
        raise DataError(f"{source} does not exist; pass the folder of a dataset downloaded from the Hugging Face "
                        "Hub (its .parquet files), one saved with save_to_disk, or one .parquet file")
    if source.is_file():
        if source.suffix.lower() not in _SUFFIXES:
            raise DataError(f"{source} is not a .parquet or .arrow file")
        files = [source]
    else:
        found = _data_files(source)
        if not found:
            raise DataError(f"{source} holds no .parquet or .arrow files; pass the dataset's folder as the Hub "
                            "(or save_to_disk) lays it out")
        files = [path for path in found if split in _split_names(path.relative_to(source))]
        if not files:
            named = sorted({_split_of(path.relative_to(source)) for path in found} - {None}) or ["(none named)"]
            raise DataError(f"{source} has no split {split!r}; its splits: {', '.join(named)} (pass --split)")
    schemas = [_schema(pyarrow, path) for path in files]
    for path, schema in zip(files[1:], schemas[1:]):  # the same columns in any order: rows are read by name
        lacks, adds = set(schemas[0].names) - set(schema.names), set(schema.names) - set(schemas[0].names)
        if lacks or adds:
            differs = "; ".join(f"{what} {', '.join(sorted(names))}" for what, names in
                                (("lacks", lacks), ("adds", adds)) if names)
            raise DataError(f"the files of split {split!r} do not share their columns: {path} {differs} (against "
                            f"{files[0]}: {', '.join(schemas[0].names)}); keep one dataset's files in the folder")
    return Split(split, files, _features(schemas[0]), sum(_row_count(pyarrow, path) for path in files))


def _rows(split: Split, columns: list[str]) -> Iterator[tuple[str, dict[str, Any]]]:
    """Each row of ``split`` as ``(where, {column: value})``; ``where`` names
    its file and row for messages (``.../train-00000-of-00002.parquet row 12``)."""
    pyarrow = _pyarrow()
    labels = {name: feature["names"] for name, feature in split.features.items() if name in columns
              and isinstance(feature, dict) and feature.get("_type") == "ClassLabel" and feature.get("names")}
    for path in split.files:
        index = 0
        for batch in _batches(pyarrow, path, columns):
            for row in batch.to_pylist():
                for name, names in labels.items():  # a class label stored as its number is read as its name
                    if isinstance(row[name], int) and 0 <= row[name] < len(names):
                        row[name] = names[row[name]]
                yield f"{path} row {index}", row
                index += 1


def media_columns(split: Split, kind: str = "Image") -> list[str]:
    """Columns holding files of ``kind`` (``Image`` or ``Audio``): that
    datasets feature, or a struct of ``bytes`` (and ``path``) where the
    files record no features (its bytes tell the kind when read)."""
    return [name for name, feature in split.features.items()
            if (isinstance(feature, dict) and feature.get("_type") == kind) or feature == "file-struct"]


def choose_column(split: Split, given: str | None, candidates: Sequence[str], flag: str, what: str) -> str:
    """The column to read ``what`` from: ``given`` (``flag`` on the command
    line), checked; else the first of ``candidates`` the split has."""
    if given is not None:
        if given not in split.features:
            raise ConfigError(f"{flag} {given}: no such column; the dataset has {', '.join(split.features)}")
        # An image or audio column named as the text one (when media are chosen, they are the candidates).
        if given in media_columns(split, "Image") + media_columns(split, "Audio") and given not in candidates:
            raise ConfigError(f"{flag} {given} holds files ({_kind(split.features[given])}), not the {what}; "
                              f"the dataset has {', '.join(split.features)}")
        return given
    found = next((name for name in candidates if name in split.features), None)
    if found is None:
        raise ConfigError(f"no {what} column among {', '.join(split.features)}; name it with {flag}")
    return found


def choose_media_column(split: Split, given: str | None, kind: str = "Image") -> str:
    """The column of ``kind`` files: ``given`` (``--image-column``,
    ``--audio-column``), or the one there is."""
    what, files = kind.lower(), {"Image": "images", "Audio": "recordings"}[kind]
    flag = f"--{what}-column"
    found = media_columns(split, kind)
    if given is None and len(found) > 1:
        raise ConfigError(f"several {what} columns ({', '.join(found)}); name one with {flag}")
    advice = f"the dataset names its {files} rather than holding them: download them, and make the data folder"
    if given in split.features and given not in found:
        raise ConfigError(f"{flag} {given} holds {_kind(split.features[given])}, not {files}; "
                          + (f"the {what} columns: {', '.join(found)}" if found else advice))
    if given is None and not found:
        other = "Audio" if kind == "Image" else "Image"
        held = [name for name in media_columns(split, other) if split.features[name] != "file-struct"]
        if held:  # an audio dataset given to an image importer, or the other way round
            raise ConfigError(f"no {what} column among {', '.join(split.features)}: the dataset holds "
                              f"{other.lower()} files ({', '.join(held)}), not {files}; it is for another importer")
        raise ConfigError(f"no {what} column among {', '.join(split.features)}: {advice}")
    return choose_column(split, given, found, flag, what)


def _kind(feature: Any) -> str:
    """A column's feature in words: ``string``, ``Sequence``..."""
    if isinstance(feature, dict):
        return str(feature.get("dtype") or feature.get("_type") or "values")
    return str(feature)


def _file_bytes(value: Any, where: str, column: str) -> bytes:
    """The file bytes of an ``Image`` or ``Audio`` value, refused naming the
    row when it holds none (a path only: the dataset was saved without its
    files)."""
    if isinstance(value, dict) and isinstance(value.get("bytes"), (bytes, bytearray)) and value["bytes"]:
        return bytes(value["bytes"])
    if isinstance(value, (bytes, bytearray)) and value:
        return bytes(value)
    path = value.get("path") if isinstance(value, dict) else None
    if path:
        raise DataError(f"{where}: {column} holds only a path ({path}), not the file; export the dataset with "
                        "its files embedded (Dataset.push_to_hub, or to_parquet after cast_column)")
    raise DataError(f"{where}: {column} holds no file")


class _FileWriter:
    """Writes each distinct file once into a folder, under its own name
    where the dataset gives one, with the suffix its bytes say."""

    def __init__(self, folder: Path, kind: str):
        self.folder, self.kind = folder, kind
        self.names: dict[str, str] = {}  # sha256 of the bytes -> file name written
        self.taken: set[str] = set()

    def name_for(self, digest: str, data: bytes, given_name: str | None, where: str) -> str:
        """The name ``data`` (whose sha256 is ``digest``) is or would be written under."""
        if digest in self.names:
            return self.names[digest]
        suffix = _image_suffix(data, where) if self.kind == "Image" else _audio_suffix(data, where)
        stem = "".join(c if c.isalnum() or c in "-_." else "_" for c in Path(given_name or "").stem).strip("._")
        name = f"{stem}{suffix}" if stem else ""
        if name and name.lower() not in self.taken:
            return name
        number = len(self.names)
        while f"{number:06d}{suffix}".lower() in self.taken:
            number += 1
        return f"{number:06d}{suffix}"

    def write(self, digest: str, data: bytes, name: str) -> None:
        if digest not in self.names:
            (self.folder / name).write_bytes(data)
            self.names[digest] = name
            self.taken.add(name.lower())


@dataclass
class ImportSummary:
    """What ``import_split`` wrote: records and distinct files, and the rows
    it skipped, counted by reason."""

    out: Path
    records: int
    files: int
    skipped: dict[str, int]

    def skipped_note(self) -> str:
        """``"; skipped 3 rows without a caption"``, or nothing."""
        return "".join(f"; skipped {count} {why}" for why, count in self.skipped.items())


def import_options(out_help: str, dataset_required: bool = True) -> Callable[[Any], Any]:
    """A decorator giving a click command what every import command takes:
    the ``DATASET`` argument, ``--out`` (``out_help``), ``--split``,
    ``--where``, ``--limit``, ``--overwrite`` and ``--quiet``, as parameters
    of those names. (``dataset_required=False``: a command that can also
    import something else, whose ``--out`` is then not needed.)"""
    import click

    options = [
        click.argument("dataset", required=dataset_required, type=click.Path()),
        click.option("--out", required=dataset_required, type=click.Path(), help=out_help),
        click.option("--split", default="train", show_default=True,
                     help="The split to import (train, validation, test...)."),
        click.option("--where", multiple=True, metavar="COLUMN=VALUE",
                     help="Keep only the rows with this value, e.g. --where split=train where a column marks the "
                          "splits, --where speaker_id=p225 for one speaker."),
        click.option("--limit", type=click.IntRange(min=1), help="Import at most this many rows."),
        click.option("--overwrite", is_flag=True, help="Replace an existing output (once the new one is complete)."),
        click.option("--quiet", is_flag=True, help="No progress bar."),
    ]

    def decorate(command: Any) -> Any:
        for option in reversed(options):
            command = option(command)
        return command

    return decorate


def import_split(split: Split, out: Path, file_column: str, columns: list[str], records_file: str | None,
                 to_records: Callable[[dict[str, Any], str], list[Any] | str],
                 limit: int | None = None, overwrite: bool = False, show_progress: bool = True,
                 where: Sequence[str] = (), kind: str = "Image",
                 line: Callable[[Any], str] = lambda record: json.dumps(record, ensure_ascii=False)) -> ImportSummary:
    """Write ``split`` as a lorakit data folder ``out``: each distinct file
    of ``file_column`` (``kind``: Image or Audio) once, its bytes as stored,
    under the name the dataset gives where it gives one; and
    ``records_file``, a ``line`` (JSON by default) for each record
    ``to_records(row, file_name)`` makes of a row, or skips it for (a
    reason, as text); with ``records_file`` None the files alone.
    ``where`` (``COLUMN=VALUE`` texts, ``--where`` on the command line) keeps
    only the rows with those values, for a dataset that marks its splits in
    a column (Flickr30k's ``split``); ``limit`` counts the rows kept. The
    folder appears whole or not at all."""
    from lorakit.atomic import atomic_dir
    from lorakit.errors import OutputError
    from lorakit.progress import work_progress

    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        if not overwrite:
            raise OutputError(f"{out} already exists; pass another --out, or --overwrite to replace it")
        _check_replaceable(out, split, records_file, kind)
    wanted = _where(split, where)
    records: list[dict[str, Any]] = []
    skipped: dict[str, int] = {}
    total = min(split.rows, limit) if limit and not wanted else split.rows
    kept = 0
    with atomic_dir(out, replace=overwrite) as folder, \
            work_progress(f"import {split.name}", total, enabled=show_progress) as advance:
        writer = _FileWriter(folder, kind)
        for place, row in _rows(split, list(dict.fromkeys([file_column, *columns, *wanted]))):
            if limit is not None and kept >= limit:
                break
            advance()
            if any(str(row[column]) != value for column, value in wanted.items()):
                continue
            kept += 1
            value = row[file_column]
            data = _file_bytes(value, place, file_column)
            digest = hashlib.sha256(data).hexdigest()
            name = writer.name_for(digest, data, value.get("path") if isinstance(value, dict) else None, place)
            made = to_records(row, name)
            if isinstance(made, str):  # a row without a caption, an answer...: no file written for it
                skipped[made] = skipped.get(made, 0) + 1
            else:
                writer.write(digest, data, name)
                records += made
        if not records:
            chosen = f" with {', '.join(where)}" if where else ""
            raise DataError(f"no rows of split {split.name!r}{chosen} could be imported"
                            + (f" ({', '.join(f'{n} {why}' for why, n in skipped.items())})" if skipped else ""))
        if records_file is not None:
            (folder / records_file).write_text("".join(line(record) + "\n" for record in records), encoding="utf-8")
    return ImportSummary(out, len(records), len(writer.names), skipped)


def _check_replaceable(out: Path, split: Split, records_file: str | None, kind: str) -> None:
    """``--overwrite`` replaces an earlier import: never the folder that holds
    the dataset being read, never one with files no import writes (notes, code)."""
    from lorakit.data.images import IMAGE_FORMATS
    from lorakit.errors import OutputError

    where = out.resolve()
    held = [f for f in split.files if f.resolve().is_relative_to(where)]
    if held:
        raise OutputError(f"--out {out} holds the dataset being imported ({held[0]}): --overwrite would delete it; "
                          "pass another --out")
    written = set(IMAGE_FORMATS.values()) if kind == "Image" else set(_AUDIO_SUFFIXES.values())
    others = sorted(p for p in out.rglob("*") if not p.is_dir() and p.name != records_file
                    and p.suffix.lower() not in written)
    if others:
        raise OutputError(f"--out {out} holds {others[0].relative_to(out)}, which no import writes: --overwrite "
                          "replaces an earlier import only; pass another --out, or move that file first")


def _where(split: Split, where: Sequence[str]) -> dict[str, str]:
    """``["split=train"]`` as ``{"split": "train"}``, each column checked."""
    wanted = {}
    for text in where:
        column, equals, value = text.partition("=")
        if not equals or not column.strip():
            raise ConfigError(f"--where {text}: write COLUMN=VALUE, e.g. --where split=train")
        if column.strip() not in split.features:
            raise ConfigError(f"--where {text}: no column {column.strip()!r}; the dataset has "
                              f"{', '.join(split.features)}")
        wanted[column.strip()] = value
    return wanted


def _data_files(folder: Path) -> list[Path]:
    return sorted(path for path in folder.rglob("*") if path.suffix.lower() in _SUFFIXES and path.is_file()
                  and not any(part.startswith(".") for part in path.relative_to(folder).parts))


def _split_names(relative: Path) -> set[str]:
    """The names a data file's path gives, any of which may be its split:
    its folders (``train/0000.parquet``), its name's first part
    (``train-00000-of-00002.parquet``) and its whole stem (``train.parquet``)."""
    stem = relative.name.split(".")[0]
    return {*relative.parts[:-1], stem.split("-")[0], stem}


def _split_of(relative: Path) -> str | None:
    """The split a data file most likely belongs to, for listing: the first
    part of its name, else its folder (``data-00000-of-00001.arrow`` in
    ``train/``, ``0000.parquet``)."""
    first = relative.name.split(".")[0].split("-")[0]
    if first not in ("data", "") and not first.isdigit():
        return first
    folders = [part for part in relative.parts[:-1] if part != "data"]
    return folders[-1] if folders else None


def _schema(pyarrow: Any, path: Path) -> Any:
    try:
        if path.suffix.lower() == ".parquet":
            return pyarrow.parquet.read_schema(path)
        with pyarrow.ipc.open_stream(path) as reader:
            return reader.schema
    except Exception as exc:  # pyarrow raises ArrowInvalid, OSError...
        raise DataError(f"{path}: not a readable {path.suffix} file ({exc}); download it again") from None


def _row_count(pyarrow: Any, path: Path) -> int:
    if path.suffix.lower() == ".parquet":
        return pyarrow.parquet.ParquetFile(path).metadata.num_rows
    return sum(batch.num_rows for batch in _batches(pyarrow, path, []))


def _batches(pyarrow: Any, path: Path, columns: list[str]) -> Iterator[Any]:
    try:
        if path.suffix.lower() == ".parquet":
            yield from pyarrow.parquet.ParquetFile(path).iter_batches(batch_size=256, columns=columns or None)
            return
        with pyarrow.ipc.open_stream(path) as reader:
            for batch in reader:
                yield batch.select(columns) if columns else batch
    except DataError:
        raise
    except Exception as exc:
        raise DataError(f"{path}: not a readable {path.suffix} file ({exc}); download it again") from None


def _features(schema: Any) -> dict[str, Any]:
    """Each column's datasets feature from the schema's ``huggingface``
    metadata, else ``file-struct`` for a struct with a binary ``bytes``
    field, else the Arrow type's name."""
    recorded: dict[str, Any] = {}
    metadata = schema.metadata or {}
    if b"huggingface" in metadata:
        try:
            recorded = json.loads(metadata[b"huggingface"]).get("info", {}).get("features", {}) or {}
        except (ValueError, AttributeError):
            recorded = {}
    features = {}
    for field in schema:
        if field.name in recorded:
            features[field.name] = recorded[field.name]
        elif _is_file_struct(field.type):
            features[field.name] = "file-struct"
        else:
            features[field.name] = str(field.type)
    return features


def _is_file_struct(arrow_type: Any) -> bool:
    import pyarrow

    return (pyarrow.types.is_struct(arrow_type) and arrow_type.get_field_index("bytes") >= 0
            and pyarrow.types.is_binary(arrow_type.field("bytes").type))


def _image_suffix(data: bytes, where: str) -> str:
    from PIL import UnidentifiedImageError

    from lorakit.data.images import IMAGE_FORMATS, image_format

    try:
        kind = image_format(data)
    except UnidentifiedImageError:  # its message names an in-memory file object, nothing of the user's
        raise DataError(f"{where}: its image is not one Pillow can read (no image format it knows)") from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise DataError(f"{where}: its image is not one Pillow can read ({exc})") from None
    if kind not in IMAGE_FORMATS:
        raise DataError(f"{where}: its image is a {kind} file, which lorakit does not read; convert it to PNG")
    return IMAGE_FORMATS[kind]


def _audio_suffix(data: bytes, where: str) -> str:
    import soundfile

    try:
        info = soundfile.info(io.BytesIO(data))
        kind = info.format
    except (RuntimeError, soundfile.LibsndfileError) as exc:
        reason = re.sub(r"^Error opening <[^>]*>: ", "", str(exc))  # the in-memory file object, nothing of the user's
        raise DataError(f"{where}: its recording is not one libsndfile can read ({reason}); convert it to WAV or "
                        "FLAC") from None
    if kind not in _AUDIO_SUFFIXES:
        raise DataError(f"{where}: its recording is a {kind} file; convert it to WAV or FLAC")
    if info.frames == 0:  # training refuses it later: said here, where the row is known
        raise DataError(f"{where}: its recording is empty (no samples); remove the row or export it again")
    return _AUDIO_SUFFIXES[kind]


def _pyarrow() -> Any:
    try:
        import pyarrow
        import pyarrow.ipc
        import pyarrow.parquet  # noqa: F401
    except ImportError:
        raise DataError("reading a Hugging Face dataset needs pyarrow: pip install pyarrow") from None
    return pyarrow
