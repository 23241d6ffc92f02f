"""A write that finds no room (a full disk, a quota, ``ulimit -f``) during a
checkpoint, the final adapter save or a merged export: one ``error:`` line
naming the path, no temporary left, nothing half-written in the output, and
the run resumable from its last good checkpoint to the same adapter as an
uninterrupted run. Python ignores SIGXFSZ, so past ``ulimit -f`` a write
fails with EFBIG, as it fails with ENOSPC on a full disk."""

import contextlib
import json
import resource

import pytest
import torch
import toy_plugin
from lorakit import runs
from lorakit.atomic import DiskFull, atomic_write_text, no_room
from lorakit.checkpoints import save_checkpoint
from test_crash import FLAGS, leftovers, lorakit, same_tensors


@contextlib.contextmanager
def file_size_limit(size: int):
    """``ulimit -f`` in bytes for this process, for the block."""
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (size, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))


def _checkpoint(path, size):
    model = torch.nn.Linear(size, size)
    optimizer = torch.optim.AdamW(model.parameters())
    model(torch.ones(1, size)).sum().backward()
    optimizer.step()
    save_checkpoint(path, model, {"main": optimizer}, {}, {"step": size})


@pytest.mark.parametrize("size", [64, 16], ids=["in-the-weights", "in-the-optimizer-state"])
def test_a_checkpoint_that_finds_no_room_keeps_the_previous_one(tmp_path, size):
    """64x64 weights pass the limit in safetensors' write; 16x16 ones pass
    and the optimizer state (torch.save, whose error hides the errno) does not."""
    last = tmp_path / "checkpoints" / "last"
    _checkpoint(last, size)
    before = {p.name: p.read_bytes() for p in last.iterdir()}
    with pytest.raises(DiskFull, match="file-size limit") as raised, file_size_limit(8192):
        _checkpoint(last, size)
    assert raised.value.path == last and str(last) in str(raised.value)
    assert {p.name: p.read_bytes() for p in last.iterdir()} == before
    assert leftovers(tmp_path) == []


def test_a_small_file_that_finds_no_room_is_not_half_written(tmp_path):
    atomic_write_text(tmp_path / "report.json", "{}")
    with pytest.raises(DiskFull, match="report.json"), file_size_limit(4):
        atomic_write_text(tmp_path / "report.json", json.dumps({"metric": 1.0}))
    assert (tmp_path / "report.json").read_text() == "{}" and leftovers(tmp_path) == []


def test_no_room_reads_the_errno_however_a_library_wraps_it():
    assert no_room(OSError(28, "No space left on device")) == "the disk is full"
    wrapped = RuntimeError("Error while serializing: IoError(Os { code: 122, kind: QuotaExceeded })")
    assert no_room(wrapped) == "the disk quota is used up"
    try:
        try:
            raise OSError(27, "File too large")
        except OSError as exc:
            raise RuntimeError("PytorchStreamWriter failed writing file data/0") from exc
    except RuntimeError as exc:
        assert no_room(exc) == "the file-size limit (ulimit -f) was reached"
    assert no_room(OSError(13, "Permission denied")) is None and no_room(ValueError("file write")) is None


def _error_line(done) -> str:
    assert done.returncode == 1, done.stdout + done.stderr
    assert "Traceback" not in done.stderr, done.stderr
    [line] = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    return line


@pytest.mark.slow
def test_a_full_disk_at_a_checkpoint_then_resume_finishes_exactly(toy_host, toy_data, tmp_path):
    flags = ["--data", str(toy_data), *FLAGS]
    whole = runs.run(runs.load_config("toy", [*flags, "--output", str(tmp_path / "whole")]), show_progress=False)
    config = runs.load_config("toy", [*flags, "--output", str(tmp_path / "run")])
    runs.run(config, stop_after=6, show_progress=False)
    last = tmp_path / "run" / "checkpoints" / "last"
    kept = {p.name: p.read_bytes() for p in last.iterdir()}
    # 4 KiB: the logs and the weights fit, the optimizer state does not
    done = lorakit("run", "toy", *flags, "--output", tmp_path / "run", "--resume", "--quiet", ulimit_kb=4)
    line = _error_line(done)
    for words in ("file-size limit", str(last), "step 6", "--resume"):
        assert words in line, line
    assert {p.name: p.read_bytes() for p in last.iterdir()} == kept and leftovers(tmp_path / "run") == []
    resumed = runs.run(config, resume=True, show_progress=False)
    assert same_tensors(whole.adapter_dir / "adapter_model.safetensors", resumed.adapter_dir / "adapter_model.safetensors")


@pytest.mark.slow
def test_a_full_disk_at_the_adapter_and_at_the_merged_export(toy_host, tmp_path):
    """The limit comes as the adapter is saved (the runner sets it then): the
    checkpoint of the last step is kept and --resume only exports. The merged
    export under `ulimit -f 4` writes nothing; run again, it is the same model.
    (Data with 64 outputs grows the toy base's head, to a merged model of
    over 4 KiB; torch writes a 3 KiB file to /tmp as it is imported.)"""
    flags = ["--data", str(toy_plugin.write_toy_data(tmp_path / "wide", outputs=64)), *FLAGS]
    whole = runs.run(runs.load_config("toy", [*flags, "--output", str(tmp_path / "whole")]), show_progress=False)
    run_dir = tmp_path / "run"
    done = lorakit("run", "toy", *flags, "--output", run_dir, "--quiet", env={"LORAKIT_TEST_FSIZE_AT_ADAPTER": "512"})
    line = _error_line(done)
    for words in ("file-size limit", str(run_dir / "adapter"), "step 24", "--resume"):
        assert words in line, line
    assert not (run_dir / "adapter").exists() and not (run_dir / "report.json").exists()
    assert leftovers(run_dir) == []
    resumed = runs.run(runs.load_config("toy", [*flags, "--output", str(run_dir)]), resume=True, show_progress=False)
    assert resumed.train.steps == whole.train.steps and (run_dir / "report.json").is_file()
    assert same_tensors(whole.adapter_dir / "adapter_model.safetensors", resumed.adapter_dir / "adapter_model.safetensors")

    merged = tmp_path / "merged"
    line = _error_line(lorakit("export", run_dir, "--merged", merged, ulimit_kb=4))
    assert "file-size limit" in line and str(merged) in line, line
    assert not merged.exists() and leftovers(tmp_path) == []
    runs.export_merged(run_dir, merged)
    runs.export_merged(whole.run_dir, tmp_path / "merged-whole")
    assert same_tensors(tmp_path / "merged-whole" / "model.safetensors", merged / "model.safetensors")
