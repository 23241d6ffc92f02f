"""The adapters under the served folders, found again when asked.

A served path is a run folder, an adapter folder, or a folder holding runs
(at any depth up to ``MAX_DEPTH``). An adapter is named by its run folder:
the folder's name when it was given itself, else its path under the served
folder (``voices/kauko``). Folders are read again on request, so adapters
trained after the server started are found without a restart, and one
rewritten in place (a resumed run, a run retrained into the same folder) is
seen by its files' stamp and loaded again.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

from lorakit.artifact import MANIFEST, WEIGHTS, Manifest, read_manifest
from lorakit.errors import LorakitError

#: How deep under a served folder adapters are looked for.
MAX_DEPTH = 4


@dataclasses.dataclass(frozen=True)
class AdapterEntry:
    """An adapter found on disk: its public name, folders and manifest."""

    name: str
    folder: Path  # the adapter folder (adapter_config.json, lorakit.json)
    run_dir: Path | None  # the run folder holding it, when there is one
    manifest: Manifest
    #: The weights' and manifest's (inode, size, mtime): runs write an adapter
    #: as a new folder renamed into place, so any rewrite changes it.
    stamp: tuple[int, ...] = ()

    @property
    def task(self) -> str:
        return self.manifest.task

    @property
    def base(self) -> str:
        return self.manifest.base


@dataclasses.dataclass
class Scan:
    """What one pass over the served folders found."""

    adapters: dict[str, AdapterEntry]
    #: Folders that look like adapters but cannot be used, with the reason.
    broken: dict[str, str]


def scan(roots: list[Path], known: dict[str, AdapterEntry] | None = None) -> Scan:
    """Every adapter under ``roots``; a name found twice keeps its first
    folder. Entries in ``known`` (by name) for the same folder and files are
    kept as they are, so a rescan reads only new or rewritten adapters."""
    adapters: dict[str, AdapterEntry] = {}
    broken: dict[str, str] = {}
    for root in roots:
        for name, folder in _adapter_folders(root):
            if name in adapters:
                broken[str(folder)] = f"the name {name!r} is taken by {adapters[name].folder}"
                continue
            stamp = _stamp(folder)
            if known and name in known and (known[name].folder, known[name].stamp) == (folder, stamp):
                adapters[name] = known[name]
                continue
            try:
                manifest = read_manifest(folder)
            except LorakitError as exc:
                broken[str(folder)] = str(exc)
                continue
            run_dir = folder.parent if folder.name == "adapter" else None
            adapters[name] = AdapterEntry(name, folder, run_dir, manifest, stamp)
    return Scan(adapters, broken)


def _adapter_folders(root: Path) -> list[tuple[str, Path]]:
    """(name, adapter folder) pairs under ``root``, in a stable order."""
    root = root.resolve()
    own = _adapter_of(root)
    if own is not None:
        return [(_display_name(root), own)]
    found = []
    for folder, subfolders, _ in os.walk(root, followlinks=True):  # MAX_DEPTH bounds a link loop
        here = Path(folder)
        depth = len(here.relative_to(root).parts)
        subfolders.sort()
        subfolders[:] = [s for s in subfolders if not s.startswith(".") and s != "checkpoints"]
        if here == root:
            continue
        adapter = _adapter_of(here)
        if adapter is not None:
            found.append((here.relative_to(root).as_posix(), adapter))
            subfolders[:] = []  # a run's own folders hold no other adapters
        elif depth >= MAX_DEPTH:
            subfolders[:] = []
    return found


def _adapter_of(folder: Path) -> Path | None:
    """The adapter folder of a run folder or of an adapter folder itself."""
    for candidate in (folder / "adapter", folder):
        if (candidate / "adapter_config.json").is_file() and (candidate / MANIFEST).is_file():
            return candidate
    return None


def _stamp(folder: Path) -> tuple[int, ...]:
    """What changes when an adapter folder's weights or manifest are rewritten."""
    stamp: list[int] = []
    for file in (WEIGHTS, MANIFEST):
        try:
            status = (folder / file).stat()
        except OSError:  # missing: read_manifest says why
            continue
        stamp += [status.st_ino, status.st_size, status.st_mtime_ns]
    return tuple(stamp)


def _display_name(folder: Path) -> str:
    return folder.parent.name if folder.name == "adapter" else folder.name
