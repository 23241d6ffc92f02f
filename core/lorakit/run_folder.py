"""The run folder: where a run writes, and the checks that keep runs apart.

    config.yaml            the resolved config (a resume must match it)
    log.jsonl, tb/         metrics
    checkpoints/last/      resumable state; checkpoints/best/ the best weights
    adapter/               the adapter artifact (peft folder + lorakit.json + README.md)
    samples/               outputs of base and adapter to look at or listen to
    report.json            base vs adapter metrics on the held-out split (and the retain set)
"""

from __future__ import annotations

from pathlib import Path

import yaml

from lorakit.config import RunConfig, build
from lorakit.errors import ConfigError, OutputError

CONFIG_FILE = "config.yaml"
REPORT_FILE = "report.json"


def prepare_output(config: RunConfig, resume: bool) -> Path:
    """The run folder: new and empty, or (with resume) an earlier run of the same config."""
    if config.output is None:
        if resume:
            raise ConfigError("--resume needs --output RUN_DIR, the folder of the run to continue")
        return next_run_dir(config.task)
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
    if run_dir.exists() and any(run_dir.iterdir()):
        raise OutputError(f"{run_dir} already holds files (a run?); choose another --output, "
                          "add --resume to continue that run, or remove the folder")
    return run_dir


def read_config(run_dir: Path) -> RunConfig:
    """The config a run was started with."""
    return build(RunConfig, yaml.safe_load((run_dir / CONFIG_FILE).read_text(encoding="utf-8")))


def next_run_dir(task: str, root: Path = Path("runs")) -> Path:
    """``runs/TASK-N`` with the first N not taken."""
    n = 1
    while (root / f"{task}-{n}").exists():
        n += 1
    return root / f"{task}-{n}"


#: Settings of how a run computes, not of what it computes: a resume may change them.
RUNTIME_ONLY = ("train.threads",)


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
