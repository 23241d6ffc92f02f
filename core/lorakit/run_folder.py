"""The run folder: where a run writes, and the checks that keep runs apart.

    config.yaml            the resolved config (a resume must match it)
    .lock                  while a run writes the folder: held by it
    log.jsonl, tb/         metrics
    checkpoints/last/      resumable state; checkpoints/best/ the best weights
    adapter/               the adapter artifact (peft folder + lorakit.json + README.md)
    samples/               outputs of base and adapter to look at or listen to
    report.json            base vs adapter metrics on the held-out split (and the retain set)
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Iterator

import yaml

from lorakit.atomic import unwritable
from lorakit.config import RunConfig, build
from lorakit.device import launch_rank
from lorakit.errors import ConfigError, OutputError
from lorakit.locking import exclusive_lock, first_missing, remove_if_empty

CONFIG_FILE = "config.yaml"
REPORT_FILE = "report.json"


#: Held (flock) by the run writing the folder, while it writes.
LOCK_FILE = ".lock"


@contextlib.contextmanager
def claim_output(config: RunConfig, resume: bool) -> Iterator[Path]:
    """The run folder, held by this run alone while it lasts: a new, empty
    one (``runs/TASK-N`` by default, the first N no other run has taken), or
    with ``resume`` an earlier run of the same config. A second run started
    on a folder in use (two runs with one --output, a --resume while the run
    still goes) is refused. In a run of several processes the main process
    holds it; the others only check it."""
    run_dir = _checked_output(config, resume)
    if launch_rank() != 0:  # several processes always name --output
        yield run_dir
        return
    try:
        if config.output is None:
            run_dir, new = _claim_numbered(config.task)
        else:
            new = first_missing(run_dir)  # the folder this run makes, with the parents it makes
            if not resume:
                run_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:  # a file in the way, no permission, a full disk, a read-only mount
        reason = unwritable(run_dir, folder=True) or exc.strerror
        raise OutputError(f"cannot make the run folder {exc.filename or run_dir} ({reason}); choose an "
                          "--output where you can write") from None
    try:
        with _locked(run_dir):
            _checked_output(config, resume)  # again, held: a run that ended meanwhile may have filled it
            yield run_dir
    finally:
        if new is not None:
            remove_if_empty(run_dir, new)  # a run that failed before writing anything leaves no folder behind


def _checked_output(config: RunConfig, resume: bool) -> Path | None:
    """The run folder ``config`` names, checked: new and empty, or (with
    resume) an earlier run of the same config; None without --output (a
    numbered folder is claimed)."""
    if config.output is None:
        if resume:
            raise ConfigError("--resume needs --output RUN_DIR, the folder of the run to continue")
        if int(os.environ.get("WORLD_SIZE", "1")) > 1:
            raise ConfigError("a run of several processes needs --output RUN_DIR: every process writes that folder")
        return None
    run_dir = Path(config.output)
    if run_dir.exists() and not run_dir.is_dir():
        raise OutputError(f"--output {run_dir} is a file, not a folder; choose a folder for the run")
    saved = run_dir / CONFIG_FILE
    if resume:
        if not saved.is_file():
            raise OutputError(f"{run_dir} holds no run to resume (no {CONFIG_FILE}); start it without --resume")
        # A run saved before data paths were stored absolute read them from the working folder.
        differences = _differences(read_config(run_dir).with_absolute_data_paths().to_dict(), config.to_dict())
        if differences:
            raise ConfigError(f"the run in {run_dir} was started with another config ({'; '.join(differences)}); "
                              "resume with the same recipe and flags, or start a new --output")
        return run_dir
    if run_dir.exists() and any(path.name != LOCK_FILE for path in run_dir.iterdir()):
        raise OutputError(f"{run_dir} already holds files (a run?); choose another --output, "
                          "add --resume to continue that run, or remove the folder")
    return run_dir


def _claim_numbered(task: str, root: Path = Path("runs")) -> tuple[Path, Path | None]:
    """``runs/TASK-N``, made by this process (two runs started at once take
    two folders), and the outermost folder it made (``runs/`` the first time)."""
    n = 1
    while True:
        candidate = root / f"{task}-{n}"
        new = first_missing(candidate)
        try:
            candidate.mkdir(parents=True)
            return candidate, new
        except FileExistsError:
            n += 1


def _locked(run_dir: Path) -> contextlib.AbstractContextManager[None]:
    """``run_dir`` held by this run while the block runs (see ``locking``)."""
    return exclusive_lock(run_dir / LOCK_FILE,
                          in_use=f"{run_dir} is in use by another lorakit run (process {{pid}}); let it finish "
                                 "(then --resume continues it, if it was stopped), or choose another --output",
                          cannot_write=f"cannot write in the run folder {run_dir} ({{reason}}); choose an --output "
                                       "where you can write")


def read_config(run_dir: Path) -> RunConfig:
    """The config a run was started with."""
    return build(RunConfig, yaml.safe_load((run_dir / CONFIG_FILE).read_text(encoding="utf-8")))


#: Settings of how and where a run computes, not of what it computes: a resume may change them
#: (the run folder is where --resume finds it: moved, or written relative then absolute).
RUNTIME_ONLY = ("train.threads", "output")


def _differences(a: dict, b: dict, prefix: str = "") -> list[str]:
    out = []
    for key in sorted(set(a) | set(b)):
        va, vb = a.get(key), b.get(key)
        if f"{prefix}{key}" in RUNTIME_ONLY:
            continue
        if isinstance(va, dict) and isinstance(vb, dict):
            out += _differences(va, vb, f"{prefix}{key}.")
        elif va != vb:
            out.append(f"{prefix}{key}: {va!r} then, {vb!r} now")
    return out
