"""Thread counts: the cores this process may use, minus those other work keeps
busy, shared among the processes of a run; settings and variables win."""

import pytest
import torch

from lorakit import runs, threads
from lorakit.errors import ConfigError


@pytest.fixture
def machine(monkeypatch):
    """Four usable cores whose other load a test sets; no thread variables."""
    for name in ("OMP_NUM_THREADS", threads.ENV, "WORLD_SIZE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(threads, "usable_cores", lambda: 4)
    load = {"busy": 0.0}
    monkeypatch.setattr(threads, "busy_cores", lambda: load["busy"])
    return load


def test_an_idle_machine_gets_a_thread_per_usable_core(machine):
    assert threads.choose().threads == 4


@pytest.mark.parametrize("busy, expected", [(0.4, 4), (1.0, 3), (2.6, 1), (4.0, 1), (9.0, 1)])
def test_cores_busy_with_other_work_are_left_to_it(machine, busy, expected):
    machine["busy"] = busy
    choice = threads.choose()
    assert choice.threads == expected and f"{busy:.1f} busy" in choice.describe()


def test_the_processes_of_one_run_share_the_cores(machine, monkeypatch):
    assert threads.choose(processes=2).threads == 2
    monkeypatch.setenv("WORLD_SIZE", "4")
    assert threads.choose().threads == 1


def test_the_setting_then_the_variables_win(machine, monkeypatch):
    machine["busy"] = 4.0
    assert threads.choose(3).describe() == "3 threads (--threads)"
    monkeypatch.setenv(threads.ENV, "2")
    assert threads.choose().describe() == "2 threads (LORAKIT_THREADS)"
    monkeypatch.setenv(threads.ENV, "many")
    with pytest.raises(ConfigError, match="LORAKIT_THREADS='many' is not a thread count"):
        threads.choose()
    monkeypatch.delenv(threads.ENV)
    monkeypatch.setenv("OMP_NUM_THREADS", "3")  # torch read it at start-up: its count stands
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(3)
        assert threads.choose().describe() == "3 threads (OMP_NUM_THREADS)"
    finally:
        torch.set_num_threads(before)


def test_busy_cores_are_the_non_idle_share_of_this_process_s_cores(monkeypatch):
    samples = iter([{0: (100, 200), 1: (100, 200)}, {0: (150, 300), 1: (200, 300)}])  # cpu0 half busy, cpu1 idle
    monkeypatch.setattr(threads, "_cpu_times", lambda cpus: next(samples))
    monkeypatch.setattr(threads, "SAMPLE_SECONDS", 0.0)
    assert threads.busy_cores() == pytest.approx(0.5)


def test_proc_stat_is_read_for_this_machine():
    times = threads._cpu_times(None)
    assert times and all(0 <= idle <= total for idle, total in times.values())
    assert 1 <= threads.usable_cores() <= len(times)


def test_a_run_says_its_threads_and_a_resume_may_change_them(toy_host, toy_data, tmp_path, capsys):
    before = torch.get_num_threads()
    try:
        flags = ["--data", str(toy_data), "--output", str(tmp_path / "r"), "--epochs", "2", "--train.threads", "1"]
        runs.run(runs.load_config("toy", flags), stop_after=2, show_progress=False)
        said = capsys.readouterr()
        assert "1 thread (--threads)" in " ".join((said.out + said.err).split())
        assert torch.get_num_threads() == 1
        resumed = runs.run(runs.load_config("toy", flags[:-1] + ["2"]), resume=True, show_progress=False)
        said = capsys.readouterr()
        assert resumed.adapter_dir is not None and resumed.train.steps == resumed.train.total_steps
        assert "2 threads (--threads)" in " ".join((said.out + said.err).split())
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)
