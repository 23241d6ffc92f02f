"""The run folder belongs to one run at a time: two runs started at once
take two folders, a second run on a folder in use is refused, and a run
that fails before writing anything leaves no folder behind."""

import pytest

from lorakit import runs
from lorakit.errors import ConfigError, DataError, OutputError
from lorakit.run_folder import LOCK_FILE, claim_output


def toy_config(toy_data, *flags):
    return runs.load_config("toy", ["--data", str(toy_data), "--epochs", "1", *flags])


def test_runs_started_together_without_output_take_two_folders(toy_host, toy_data, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    config = toy_config(toy_data)
    with claim_output(config, False) as first, claim_output(config, False) as second:
        # Neither has written anything yet (the base and data still loading): before, both chose runs/toy-1.
        assert (first.as_posix(), second.as_posix()) == ("runs/toy-1", "runs/toy-2")
    outcome = runs.run(config, show_progress=False)
    assert outcome.run_dir.as_posix() == "runs/toy-1" and not (tmp_path / "runs" / "toy-2").exists()
    assert LOCK_FILE not in {p.name for p in outcome.run_dir.iterdir()}  # released and gone


def test_a_second_run_on_a_folder_in_use_is_refused_naming_the_process(toy_host, toy_data, tmp_path):
    import os

    out = tmp_path / "run"
    config = toy_config(toy_data, "--output", str(out))
    with claim_output(config, False):
        with pytest.raises(OutputError, match=f"in use by another lorakit run \\(process {os.getpid()}\\)"):
            runs.run(config, show_progress=False)
    runs.run(config, show_progress=False)  # free again
    with claim_output(config, True):  # a --resume while the run still goes
        with pytest.raises(OutputError, match="in use by another lorakit run"):
            runs.run(config, resume=True, show_progress=False)


def test_a_run_whose_data_fails_leaves_no_folder(toy_host, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    empty = tmp_path / "empty"
    empty.mkdir()
    for flags in (["--output", str(tmp_path / "new" / "run")], []):
        with pytest.raises(DataError):
            runs.run(runs.load_config("toy", ["--data", str(empty), *flags]), show_progress=False)
    assert [p.name for p in tmp_path.iterdir()] == ["empty"]  # not new/run, nor runs/toy-1, nor their parents
    (tmp_path / "runs").mkdir()  # a folder of the user's own stays, empty or not
    with pytest.raises(DataError):
        runs.run(runs.load_config("toy", ["--data", str(empty)]), show_progress=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty", "runs"] and not any((tmp_path / "runs").iterdir())


def test_several_processes_need_an_output_folder(toy_host, toy_data, monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "2")
    with pytest.raises(ConfigError, match="several processes needs --output"):
        with claim_output(toy_config(toy_data), False):
            pass


def test_a_folder_that_cannot_be_made_is_one_error(toy_host, toy_data, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(OutputError, match="cannot make the run folder"):
        runs.run(toy_config(toy_data, "--output", str(blocker / "run")), show_progress=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file", "toy-data"]
