"""A run or an export killed (kill -9) at any point: the documented recovery
command (`--resume`, or the export again) finishes, and the adapter is
bitwise the one an uninterrupted run makes.

The kills land deterministically: the CLI runs in a subprocess through
``RUNNER``, which adds the toy tasks and, as ``LORAKIT_TEST_CRASH`` says,
sends itself SIGKILL at the Nth loss call, inside the Nth checkpoint write,
between the two renames of the Nth swap of ``checkpoints/last``, or after the
merged model's weights are written.
"""

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from lorakit import atomic, runs
from lorakit.atomic import atomic_dir, atomic_write_text, recover
from safetensors.torch import load_file, save_file

TESTS = Path(__file__).resolve().parents[1]

RUNNER = r'''
import os, resource, signal, sys
sys.path.insert(0, sys.argv.pop(1))
import toy_plugin
from lorakit.plugins import get_host
get_host().add_plugin(toy_plugin, "toy-tests")

def die():
    os.kill(os.getpid(), signal.SIGKILL)

def dies_at(n, when=lambda *args: True, after=False):
    """``real`` wrapped to die at the nth call that ``when`` counts (before it runs, or just ``after``)."""
    calls = [0]
    def wrap(real):
        def wrapped(*args, **kwargs):
            counted = bool(when(*args))
            calls[0] += counted
            if counted and calls[0] == n and not after:
                die()
            out = real(*args, **kwargs)
            if counted and calls[0] == n and after:
                die()
            return out
        return wrapped
    return wrap

def swapping_last(src, dst):
    """The second rename of a swap of checkpoints/last: the new copy into place, the old one aside."""
    return (os.path.basename(dst) == "last" and os.path.basename(src).startswith(".last.tmp-")
            and any(f.startswith(".last.old-") for f in os.listdir(os.path.dirname(dst))))

point, _, n = os.environ.get("LORAKIT_TEST_CRASH", "").partition(":")
n = int(n or 0)
if point == "loss":
    toy_plugin.ToyTask.loss = dies_at(n)(toy_plugin.ToyTask.loss)
elif point == "checkpoint":
    import torch
    torch.save = dies_at(n)(torch.save)
elif point == "renames":
    os.replace = dies_at(n, when=swapping_last)(os.replace)
elif point == "merged":
    import safetensors.torch
    safetensors.torch.save_file = dies_at(n, after=True)(safetensors.torch.save_file)
limit = os.environ.get("LORAKIT_TEST_FSIZE_AT_ADAPTER")
if limit:
    import lorakit.runs
    real_save = lorakit.runs.save_adapter
    def limited_save(*args, **kwargs):
        resource.setrlimit(resource.RLIMIT_FSIZE, (int(limit), resource.getrlimit(resource.RLIMIT_FSIZE)[1]))
        return real_save(*args, **kwargs)
    lorakit.runs.save_adapter = limited_save

from lorakit.cli import main
sys.argv = ["lorakit", *sys.argv[1:]]
main()
'''


def lorakit(*args: object, crash: str = "", ulimit_kb: int | None = None, env: dict | None = None,
            timeout: int = 300) -> subprocess.CompletedProcess:
    """``lorakit *args`` in a subprocess with the toy tasks; ``crash`` as
    ``LORAKIT_TEST_CRASH`` takes it; ``ulimit_kb``: bash's ``ulimit -f`` first."""
    command = [sys.executable, "-c", RUNNER, str(TESTS), *map(str, args)]
    if ulimit_kb is not None:
        command = ["bash", "-c", f'ulimit -f {ulimit_kb} && exec "$@"', "bash", *command]
    environment = {**os.environ, "OMP_NUM_THREADS": "1", "LORAKIT_TEST_CRASH": crash, **(env or {})}
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout, env=environment)


def leftovers(folder: Path) -> list[str]:
    """Hidden temporaries (``.X.tmp-*``, ``.X.old-*``) anywhere under ``folder``."""
    return sorted(str(p) for p in Path(folder).rglob(".*") if ".tmp-" in p.name or ".old-" in p.name)


def same_tensors(a: Path, b: Path) -> bool:
    x, y = load_file(str(a)), load_file(str(b))
    return x.keys() == y.keys() and all(torch.equal(x[k], y[k]) for k in x)


def dead_pid() -> int:
    """The pid of a process that has exited (and been reaped)."""
    done = subprocess.Popen(["true"])
    done.wait()
    return done.pid


# -- the folder swap, by hand ------------------------------------------------------------


def _folder(path: Path, text: str) -> Path:
    path.mkdir(parents=True)
    (path / "state.json").write_text(text)
    return path


def test_a_kill_between_the_renames_leaves_the_previous_copy_which_recover_puts_back(tmp_path):
    pid = dead_pid()
    _folder(tmp_path / f".last.old-{pid}-0a0b0c0d", "old")  # renamed out of the way
    _folder(tmp_path / f".last.tmp-{pid}-01020304", "new")  # complete, but never renamed in
    recover(tmp_path / "last")
    assert (tmp_path / "last" / "state.json").read_text() == "old"
    assert leftovers(tmp_path) == []


def test_stale_temporaries_of_dead_processes_go_those_of_running_ones_stay(tmp_path):
    target = tmp_path / "adapter"
    _folder(target, "current")
    dead, running = dead_pid(), os.getppid()
    _folder(tmp_path / f".adapter.tmp-{dead}-00000001", "half")
    _folder(tmp_path / f".adapter.old-{dead}-00000002", "previous")
    (tmp_path / f".adapter.tmp-{os.getpid()}-00000003").write_text("a namesake's (same pid, not in flight)")
    live = _folder(tmp_path / f".adapter.tmp-{running}-00000004", "being written")
    other = _folder(tmp_path / f".adapters.tmp-{dead}-00000005", "another target's")
    with atomic_dir(target, replace=True) as tmp:
        (tmp / "state.json").write_text("next")
        assert str(tmp) in atomic._LIVE
    assert (target / "state.json").read_text() == "next"
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["adapter", live.name, other.name])


def test_written_files_and_folders_get_the_umask_s_permissions(tmp_path):
    old = os.umask(0o022)
    try:
        atomic_write_text(tmp_path / "report.json", "{}")
        with atomic_dir(tmp_path / "adapter") as tmp:
            (tmp / "weights").write_bytes(b"w")
            save_file({"w": torch.zeros(2)}, tmp / "adapter_model.safetensors")  # safetensors 0.8 writes 0600
            (tmp / "private").write_bytes(b"p")
            (tmp / "private").chmod(0o600)
    finally:
        os.umask(old)
    assert (tmp_path / "report.json").stat().st_mode & 0o777 == 0o644
    assert (tmp_path / "adapter").stat().st_mode & 0o777 == 0o755
    for name in ("weights", "adapter_model.safetensors", "private"):
        assert (tmp_path / "adapter" / name).stat().st_mode & 0o777 == 0o644, name


def test_a_failed_write_keeps_the_previous_copy_and_no_temporary(tmp_path):
    _folder(tmp_path / "last", "old")
    with pytest.raises(ValueError):
        with atomic_dir(tmp_path / "last", replace=True) as tmp:
            (tmp / "state.json").write_text("new")
            raise ValueError("boom")
    assert (tmp_path / "last" / "state.json").read_text() == "old" and leftovers(tmp_path) == []


def test_a_target_that_cannot_be_written_is_one_error_and_nothing_made(tmp_path):
    from lorakit.errors import OutputError

    (tmp_path / "file").write_text("in the way")
    (tmp_path / "folder").mkdir()
    cases = [(lambda: atomic_write_text(tmp_path / "folder", "x"), "folder is a folder"),
             (lambda: atomic_write_text(tmp_path / "file" / "sub" / "a.json", "x"), "file is a file, not a folder"),
             (lambda: atomic_dir(tmp_path / "file").__enter__(), "file is a file$"),
             (lambda: atomic_dir(tmp_path / "file" / "adapter").__enter__(), "file is a file, not a folder")]
    for write, problem in cases:
        with pytest.raises(OutputError, match=problem):
            write()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file", "folder"] and leftovers(tmp_path) == []


@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="/proc, a folder that takes no new files, is Linux's")
def test_a_place_that_takes_nothing_new_is_one_error_naming_the_target():
    """Making the temporary there failed with a traceback (root may write
    anywhere by its permissions, but not in /proc)."""
    from lorakit.atomic import check_writable
    from lorakit.errors import OutputError

    cases = [(lambda: atomic_write_text(Path("/proc/lorakit-test.json"), "x"), "/proc/lorakit-test.json"),
             (lambda: atomic_write_text(Path("/proc/lorakit-test/a.json"), "x"), "/proc/lorakit-test/a.json"),
             (lambda: atomic_dir(Path("/proc/lorakit-test")).__enter__(), "/proc/lorakit-test"),
             (lambda: check_writable(Path("/proc/lorakit-test/a.wav"), "--out"), "--out /proc/lorakit-test/a.wav")]
    for write, target in cases:
        with pytest.raises(OutputError, match=f"^cannot write {target}: /proc takes no new files or folders"):
            write()
    with pytest.raises(OutputError, match="choose another --out where you can write"):
        check_writable(Path("/proc/lorakit-test.wav"), "--out")


def test_checking_a_new_place_leaves_nothing_there(tmp_path):
    from lorakit.atomic import check_writable

    check_writable(tmp_path / "new" / "sub" / "a.wav", "--out")
    check_writable(tmp_path / "b.wav", "--out")
    check_writable(tmp_path / "clips", "--out", folder=True)
    assert list(tmp_path.iterdir()) == []


def test_resume_finds_the_checkpoint_a_kill_between_the_renames_left(toy_host, toy_data, tmp_path):
    """In process: the state a kill between the renames leaves is made by hand
    (the subprocess test below makes it with a real kill)."""
    flags = ["--data", str(toy_data), "--lr", "0.02", "--batch_size", "16", "--lora.dropout", "0.1",
             "--epochs", "2", "--grad_accum", "2", "--eval_every", "3"]
    whole = runs.run(runs.load_config("toy", [*flags, "--output", str(tmp_path / "whole")]), evaluate=False,
                     show_progress=False)
    config = runs.load_config("toy", [*flags, "--output", str(tmp_path / "parts")])
    runs.run(config, evaluate=False, stop_after=6, show_progress=False)
    checkpoints = tmp_path / "parts" / "checkpoints"
    pid = dead_pid()
    os.replace(checkpoints / "last", checkpoints / f".last.old-{pid}-12345678")
    (checkpoints / f".last.tmp-{pid}-9abcdef0").mkdir()  # and a half-written next one
    resumed = runs.run(config, resume=True, evaluate=False, show_progress=False)
    assert resumed.train.steps == whole.train.steps
    assert same_tensors(whole.adapter_dir / "adapter_model.safetensors",
                        resumed.adapter_dir / "adapter_model.safetensors")
    assert leftovers(tmp_path / "parts") == []


# -- real kills, through the CLI ---------------------------------------------------------

FLAGS = ("--lr", "0.02", "--batch_size", "16", "--lora.dropout", "0.1", "--epochs", "4", "--grad_accum", "2",
         "--eval_every", "3")


def _killed(done: subprocess.CompletedProcess) -> None:
    assert done.returncode == -signal.SIGKILL, done.stdout + done.stderr


@pytest.mark.slow
def test_kill_9_at_each_point_of_a_run_and_of_an_export_then_recovery_is_exact(toy_host, toy_data, tmp_path):
    """One run killed before its first checkpoint, inside a checkpoint write,
    mid-step and between the renames of checkpoints/last, each time continued
    with --resume; then its export killed and run again. 24 steps, a
    checkpoint every 3 (6 loss calls)."""
    whole = runs.run(runs.load_config("toy", ["--data", str(toy_data), "--output", str(tmp_path / "whole"), *FLAGS]),
                     show_progress=False)
    run_dir = tmp_path / "run"
    command = ("run", "toy", "--data", toy_data, "--output", run_dir, *FLAGS, "--quiet")

    _killed(lorakit(*command, crash="loss:3"))  # step 2: no checkpoint yet
    assert not (run_dir / "checkpoints" / "last").exists()

    _killed(lorakit(*command, "--resume", crash="checkpoint:2"))  # writing the step-6 checkpoint
    assert (run_dir / "checkpoints" / "last" / "state.json").is_file()
    [half] = leftovers(run_dir / "checkpoints")
    assert ".last.tmp-" in half and not (Path(half) / "state.json").exists()

    _killed(lorakit(*command, "--resume", crash="loss:6"))  # step 3 from the step-3 checkpoint: mid-step
    assert leftovers(run_dir / "checkpoints") == []  # the resume cleared the half-written one away

    _killed(lorakit(*command, "--resume", crash="renames:1"))  # the step-6 checkpoint, between the renames
    assert not (run_dir / "checkpoints" / "last").exists()
    assert any(".last.old-" in p for p in leftovers(run_dir / "checkpoints"))

    done = lorakit(*command, "--resume")
    assert done.returncode == 0, done.stdout + done.stderr
    assert same_tensors(whole.adapter_dir / "adapter_model.safetensors", run_dir / "adapter" / "adapter_model.safetensors")
    assert leftovers(run_dir) == []

    merged = tmp_path / "merged"
    _killed(lorakit("export", run_dir, "--merged", merged, crash="merged:1"))
    assert not merged.exists() and leftovers(tmp_path) != []
    done = lorakit("export", run_dir, "--merged", merged)
    assert done.returncode == 0, done.stdout + done.stderr
    runs.export_merged(whole.run_dir, tmp_path / "merged-whole")
    assert same_tensors(tmp_path / "merged-whole" / "model.safetensors", merged / "model.safetensors")
    assert leftovers(tmp_path) == []
    assert merged.stat().st_mode & 0o777 == 0o777 & ~_umask()


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
