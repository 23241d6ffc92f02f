import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

#: Every built-in task and the example plugin's, with the demo recipe that
#: trains it on its demo base and sample data.
DEMOS = {
    "caption": "caption-demo",
    "vqa": "vqa-demo",
    "voice-clone": "voice-demo",
    "music-style": "music-demo",
    "textclass": "textclass-demo",
}
#: A few optimizer steps, two of them followed by validation.
SHORT = ("--train.max_steps", "4", "--train.batch_size", "4", "--train.eval_every", "2")


def _torchrun_command(target: str, *flags: str) -> list[str]:
    """tests/ddp_run.py under two gloo CPU processes: ``target`` and ``flags``
    as `lorakit train` takes them."""
    return [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
            str(REPO / "tests" / "ddp_run.py"), target, *flags]


def _torchrun(target: str, *flags: str, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run(_torchrun_command(target, *flags), capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})


def _toy_flags(data: Path, out: Path, *flags: str) -> tuple[str, ...]:
    return ("--data", str(data), "--output", str(out), "--epochs", "6", "--lr", "0.02", "--batch_size", "16", *flags)


def _two_processes(task: str, data: Path, out: Path, *flags: str, timeout: float = 600) -> subprocess.CompletedProcess:
    return _torchrun(task, *_toy_flags(data, out, *flags), timeout=timeout)


def _weights_by_rank(stdout: str) -> dict[int, list[tuple[int, str]]]:
    """Each rank's (step, digest of its trainable weights) after every optimizer step."""
    ranks: dict[int, list[tuple[int, str]]] = {}
    for rank, step, digest in re.findall(r"rank (\d+) step (\d+) weights: ([0-9a-f]{16})", stdout):
        ranks.setdefault(int(rank), []).append((int(step), digest))
    return ranks


def _built_in_tasks() -> set[str]:
    """The tasks of the plugins this repository's distributions (lorakit and
    the example lorakit-textclass) register through entry points."""
    from importlib import metadata

    from lorakit.plugins import PluginHost

    host = PluginHost(load_entry_points=False)
    for ep in metadata.entry_points(group="lorakit"):
        if ep.dist is not None and ep.dist.name in ("lorakit", "lorakit-textclass"):
            assert host.add_plugin(ep.load(), ep.name).error is None
    return set(host.tasks)


def test_every_built_in_task_has_a_two_process_case():
    from lorakit.recipes import recipe_values

    assert _built_in_tasks() == set(DEMOS)
    assert {task: recipe_values(recipe)["task"] for task, recipe in DEMOS.items()} == {task: task for task in DEMOS}


@pytest.mark.slow
@pytest.mark.parametrize("task", list(DEMOS))
def test_every_task_trains_under_two_processes_with_the_same_weights_on_each(task, tmp_path):
    """Each task's demo under two gloo processes: every optimizer group's
    gradients (the voice GAN's discriminator and LoRA, a trained answer head)
    are averaged across processes, so both ranks hold the same weights after
    every step (the voice GAN used to crash at its first step under DDP)."""
    out = tmp_path / "run"
    result = _torchrun(DEMOS[task], "--output", str(out), *SHORT)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "2 processes" in result.stderr
    assert result.stdout.count("rank done: steps=4 total=4") == 2, result.stdout
    ranks = _weights_by_rank(result.stdout)
    assert sorted(ranks) == [0, 1] and [step for step, _ in ranks[0]] == [1, 2, 3, 4], result.stdout
    assert ranks[0] == ranks[1], result.stdout
    assert len({digest for _, digest in ranks[0]}) == 4, result.stdout  # every step changed the weights
    final = re.findall(r"rank weights: ([0-9a-f]{16})", result.stdout)
    assert len(final) == 2 and final[0] == final[1], result.stdout
    log = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    assert [entry["step"] for entry in log if entry["event"] == "validation"] == [2, 4]
    assert (out / "adapter" / "adapter_model.safetensors").is_file()
    assert json.loads((out / "report.json").read_text())["test"]


@pytest.mark.slow
@pytest.mark.parametrize("task", ["toy", "toy-pair"])
def test_two_cpu_processes_train_one_adapter(task, toy_data, tmp_path):
    """Real multi-process training (gloo) on two CPU processes: each rank takes
    half the batches and both end with the same weights; with two optimizers
    (toy-pair, as a GAN has) too, where DDP's one-backward sync cannot serve."""
    out = tmp_path / "ddp"
    result = _two_processes(task, toy_data, out)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "2 processes" in result.stderr
    # 180 training examples = 12 batches of 16, 6 per rank per epoch.
    assert result.stdout.count("rank done: steps=36 total=36") == 2
    digests = re.findall(r"rank weights: ([0-9a-f]{16})", result.stdout)
    assert len(digests) == 2 and digests[0] == digests[1], result.stdout
    ranks = _weights_by_rank(result.stdout)
    assert sorted(ranks) == [0, 1] and len(ranks[0]) == 36 and ranks[0] == ranks[1], result.stdout
    report = json.loads((out / "report.json").read_text())
    assert report["test"]["adapter"]["mse"] < 0.3 * report["test"]["base"]["mse"]


@pytest.mark.slow
def test_every_process_follows_the_main_process_s_validation(toy_data, tmp_path):
    """Rank 1's own validation would get worse each time and stop it early
    (patience 1) while rank 0 goes on; both must take rank 0's decisions:
    train as long as a run whose ranks all validate as rank 0 does."""
    flags = ("--train.metric", "mse", "--train.patience", "1")
    skewed = _two_processes("toy", toy_data, tmp_path / "skewed", *flags, "--rank_skew", "100")
    assert skewed.returncode == 0, skewed.stderr[-3000:]
    unskewed = _two_processes("toy", toy_data, tmp_path / "unskewed", *flags)
    assert unskewed.returncode == 0, unskewed.stderr[-3000:]
    steps = re.findall(r"rank done: steps=(\d+)", skewed.stdout)
    expected = re.findall(r"rank done: steps=(\d+)", unskewed.stdout)
    assert len(expected) == 2 and steps == expected, (skewed.stdout, unskewed.stdout)


@pytest.mark.slow
def test_every_process_watches_an_optional_metric_or_refuses_it_together(toy_data, tmp_path):
    """Whether the task measures an optional metric is asked by the main
    process (the one that validates) and told to the others: with the option
    both train on it; without, both stop with the reason, none left waiting."""
    watched = _two_processes("toy", toy_data, tmp_path / "mae", "--train.metric", "mae", "--report_mae", "true")
    assert watched.returncode == 0, watched.stderr[-3000:]
    assert len(set(re.findall(r"rank weights: ([0-9a-f]{16})", watched.stdout))) == 1, watched.stdout
    refused = _two_processes("toy", toy_data, tmp_path / "no-option", "--train.metric", "mae", timeout=300)
    assert refused.returncode != 0
    assert refused.stderr.count("task 'toy' measures it only under one of its options") == 2, refused.stderr[-3000:]


@pytest.mark.slow
def test_the_main_process_reads_the_data_first_and_the_others_after_it(toy_data, tmp_path, monkeypatch):
    """What reading the data caches (voice clips transcribed by Whisper) is
    done by the main process alone; the others read after it, from its cache."""
    monkeypatch.setenv("DDP_RUN_DATA_SECONDS", "1")
    result = _torchrun("toy", "--data", str(toy_data), "--output", str(tmp_path / "ddp"), "--train.max_steps", "2")
    assert result.returncode == 0, result.stderr[-3000:]
    read = {int(rank): (float(start), float(end))
            for rank, start, end in re.findall(r"rank (\d+) read data from ([\d.]+) to ([\d.]+)", result.stdout)}
    assert sorted(read) == [0, 1], result.stdout
    assert read[1][0] >= read[0][1], read


@pytest.mark.slow
def test_two_processes_resume_exactly_with_each_rank_s_own_dropout(toy_data, tmp_path):
    """With dropout each process draws its own masks; a run stopped and resumed
    under two processes ends with the weights of an uninterrupted one (each
    rank gets its own generators back, not rank 0's)."""
    dropout = ("--lora.dropout", "0.3")
    whole = _two_processes("toy", toy_data, tmp_path / "whole", *dropout)
    first = _two_processes("toy", toy_data, tmp_path / "resumed", *dropout, "--stop_after", "15")
    second = _two_processes("toy", toy_data, tmp_path / "resumed", *dropout, "--resume")
    for result in (whole, first, second):
        assert result.returncode == 0, result.stderr[-3000:]
    whole_digests = re.findall(r"rank weights: ([0-9a-f]{16})", whole.stdout)
    resumed_digests = re.findall(r"rank weights: ([0-9a-f]{16})", second.stdout)
    assert len(set(whole_digests)) == 1 and resumed_digests == whole_digests, (whole.stdout, second.stdout)


@pytest.mark.slow
def test_a_nan_on_one_process_stops_every_process_with_the_message(toy_data, tmp_path):
    """Only rank 1's loss turns NaN; rank 0 must not wait for it forever: both
    stop at the same step, and rank 0 says the loss was not finite elsewhere."""
    result = _two_processes("toy", toy_data, tmp_path / "ddp", "--nan_at_call", "5", "--nan_rank", "1")
    assert result.returncode != 0
    assert "training stopped at step 5: the main loss is nan" in result.stderr
    assert "training stopped at step 5: the main loss is not finite on another process" in result.stderr


def _last_steps(stdout: str) -> dict[int, tuple[int, str]]:
    """Each rank's last optimizer step and the digest of its weights after it."""
    return {rank: steps[-1] for rank, steps in _weights_by_rank(stdout).items()}


def _saved_step(run_dir: Path) -> int:
    return json.loads((run_dir / "checkpoints" / "last" / "state.json").read_text())["step"]


def _final_digests(stdout: str) -> list[str]:
    return re.findall(r"rank weights: ([0-9a-f]{16})", stdout)


@pytest.mark.slow
@pytest.mark.parametrize("save_every", ["0", "3"])
def test_ctrl_c_on_one_process_mid_step_stops_both_after_that_step(save_every, toy_data, tmp_path, monkeypatch):
    """A Ctrl-C reaches each process somewhere else in its step; here only
    rank 1 gets one, in its 9th forward pass. Both finish step 9, save it
    together and stop (rank 1 used to save alone, through collectives rank 0
    never joined: the run hung), and --resume ends with an uninterrupted
    run's weights. With --save_every 3, step 9 is checkpointed as it ends,
    and the stop writes it no second time."""
    flags = ("--lora.dropout", "0.3", "--train.save_every", save_every)
    whole = _two_processes("toy", toy_data, tmp_path / "whole", *flags)
    monkeypatch.setenv("TOY_SIGNAL_AT_CALL", "9")
    monkeypatch.setenv("TOY_SIGNAL_RANK", "1")
    cut = _two_processes("toy", toy_data, tmp_path / "cut", *flags, timeout=180)
    monkeypatch.delenv("TOY_SIGNAL_AT_CALL")
    assert cut.returncode != 0 and "rank done" not in cut.stdout, cut.stdout
    last = _last_steps(cut.stdout)
    assert last[0] == last[1] and last[0][0] == 9 == _saved_step(tmp_path / "cut"), cut.stdout
    saves = {rank: [int(step) for r, step in re.findall(r"rank (\d+) saved step (\d+)", cut.stdout) if int(r) == rank]
             for rank in (0, 1)}
    expected = [6, 9] if save_every == "0" else [3, 6, 9]  # 6: the end of epoch 1, validated and saved
    assert saves[0] == saves[1] == expected, cut.stdout
    resumed = _two_processes("toy", toy_data, tmp_path / "cut", *flags, "--resume")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert _final_digests(resumed.stdout) == _final_digests(whole.stdout) and len(set(_final_digests(whole.stdout))) == 1


@pytest.mark.slow
@pytest.mark.parametrize("signal_number", [signal.SIGINT, signal.SIGTERM])
def test_ctrl_c_or_sigterm_to_the_launcher_saves_one_step_for_every_process(signal_number, toy_data, tmp_path,
                                                                             monkeypatch):
    """Ctrl-C in the terminal (or a cluster's SIGTERM) reaches torchrun, which
    passes it on to every process and kills them 30 s later: they stop after
    one step they agree on, saved, well before that, and --resume continues
    exactly."""
    whole = _two_processes("toy", toy_data, tmp_path / "whole")
    monkeypatch.setenv("TOY_SECONDS_PER_CALL", "0.05")  # 36 steps of at least 50 ms: time to interrupt
    with open(tmp_path / "stderr.txt", "w") as stderr:
        launcher = subprocess.Popen(_torchrun_command("toy", *_toy_flags(toy_data, tmp_path / "cut")),
                                    stdout=subprocess.PIPE, stderr=stderr, text=True,
                                    env={**os.environ, "OMP_NUM_THREADS": "1"})
        seen = []
        for line in launcher.stdout:
            seen.append(line)
            if line.startswith("rank 0 step 5 "):
                launcher.send_signal(signal_number)
                break
        rest, _ = launcher.communicate(timeout=25)  # before torchrun's own kill
    cut = "".join(seen) + rest
    assert launcher.returncode != 0 and "rank done" not in cut, cut
    last = _last_steps(cut)
    assert last[0] == last[1] and 5 <= last[0][0] < 36 and last[0][0] == _saved_step(tmp_path / "cut"), cut
    monkeypatch.delenv("TOY_SECONDS_PER_CALL")
    resumed = _two_processes("toy", toy_data, tmp_path / "cut", "--resume")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert _final_digests(resumed.stdout) == _final_digests(whole.stdout)
