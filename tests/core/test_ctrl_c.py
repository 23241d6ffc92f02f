"""Ctrl-C at any moment of a run, then --resume: the run continues as if it
had not been interrupted (the same adapter, bit for bit), whether the key
came in a forward pass, while a step was validated, while the best weights
were written, or between the two optimizer steps of a GAN-style task."""

import json
import signal

import pytest
import torch
from safetensors.torch import load_file

from lorakit import runs


def _config(data, out, *flags, task="toy"):
    return runs.load_config(task, ["--data", str(data), "--output", str(out), "--lr", "0.02",
                                   "--batch_size", "16", "--lora.dropout", "0.1", *flags])


def _adapter(outcome):
    return load_file(str(outcome.adapter_dir / "adapter_model.safetensors"))


def _same(a, b):
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def _events(run_dir):
    return [(r["event"], r["step"]) for r in map(json.loads, (run_dir / "log.jsonl").read_text().splitlines())]


def _interrupted_then_resumed(data, folder, *flags, task="toy"):
    with pytest.raises(KeyboardInterrupt):
        runs.run(_config(data, folder, *flags, task=task), show_progress=False)
    state = json.loads((folder / "checkpoints" / "last" / "state.json").read_text())
    resumed = runs.run(_config(data, folder, *flags, task=task), resume=True, show_progress=False)
    return state, resumed


def test_in_a_forward_pass_mid_accumulation(toy_host, toy_data, tmp_path):
    # Dropout draws from the generators: they must be saved as the last
    # completed step left them, not as the half-done next step did.
    flags = ("--epochs", "2", "--grad_accum", "2", "--eval_every", "4")
    whole = runs.run(_config(toy_data, tmp_path / "whole", *flags), show_progress=False)
    state, resumed = _interrupted_then_resumed(toy_data, tmp_path / "cut", *flags, "--interrupt_at_call", "12")
    assert state["step"] == 4  # calls 1-8: steps 1-4, 9-10: validation, 11-12: step 5 (11 drew its dropout)
    assert _same(_adapter(resumed), _adapter(whole))


def test_while_a_step_is_validated(toy_host, toy_data, tmp_path):
    flags = ("--epochs", "2", "--eval_every", "3", "--train.metric", "mse")
    whole = runs.run(_config(toy_data, tmp_path / "whole", *flags), show_progress=False)
    state, resumed = _interrupted_then_resumed(toy_data, tmp_path / "cut", *flags, "--interrupt_at_evaluation", "2")
    assert state["step"] == 6 and state["validation_pending"]  # the resumed run validates step 6 first
    assert len(state["history"]) == 1
    assert resumed.train.best_step == whole.train.best_step and resumed.train.history == whole.train.history
    assert _events(tmp_path / "cut") == _events(tmp_path / "whole"), "each validation logged once"
    assert _same(_adapter(resumed), _adapter(whole))


def test_while_the_best_weights_are_written(toy_host, toy_data, tmp_path, monkeypatch):
    import lorakit.trainer

    flags = ("--epochs", "2", "--eval_every", "3", "--train.metric", "mse")
    whole = runs.run(_config(toy_data, tmp_path / "whole", *flags), show_progress=False)
    original, calls = lorakit.trainer.save_weights, []

    def interrupted(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:  # the second best: Ctrl-C before the folder is swapped in
            raise KeyboardInterrupt
        return original(*args, **kwargs)

    monkeypatch.setattr(lorakit.trainer, "save_weights", interrupted)
    with pytest.raises(KeyboardInterrupt):
        runs.run(_config(toy_data, tmp_path / "cut", *flags), show_progress=False)
    checkpoints = tmp_path / "cut" / "checkpoints"
    state = json.loads((checkpoints / "last" / "state.json").read_text())
    best = json.loads((checkpoints / "best" / "state.json").read_text())
    # The loop state names the best weights the best/ folder holds (step 3), and step 6 is validated again.
    assert state["step"] == 6 and state["validation_pending"] and state["best_step"] == 3 == best["step"]
    resumed = runs.run(_config(toy_data, tmp_path / "cut", *flags), resume=True, show_progress=False)
    assert resumed.train.best_step == whole.train.best_step
    assert _same(_adapter(resumed), _adapter(whole))


def test_between_the_two_optimizer_steps_of_a_step(toy_host, toy_data, tmp_path):
    # toy-pair steps its encoder, then computes the head's loss and steps the
    # head: a checkpoint taken in between would hold half a step.
    flags = ("--epochs", "2", "--eval_every", "100", "--save_every", "2")
    whole = runs.run(_config(toy_data, tmp_path / "whole", *flags, task="toy-pair"), show_progress=False)
    state, resumed = _interrupted_then_resumed(toy_data, tmp_path / "cut", *flags, "--interrupt_at_call", "8",
                                               task="toy-pair")
    assert state["step"] == 2  # step 4 was half done: the checkpoint of step 2 is kept as it was
    assert _same(_adapter(resumed), _adapter(whole))


def _counting_saves(monkeypatch):
    """The step of every checkpoint the trainer writes."""
    import lorakit.trainer

    steps, save = [], lorakit.trainer.save_checkpoint

    def counted(path, model, optimizers, schedulers, state, *args, **kwargs):
        steps.append(state["step"])
        return save(path, model, optimizers, schedulers, state, *args, **kwargs)

    monkeypatch.setattr(lorakit.trainer, "save_checkpoint", counted)
    return steps


@pytest.mark.parametrize("stop", ["ctrl-c", "stop_after"])
def test_a_stop_right_after_a_checkpoint_writes_it_once(stop, toy_host, toy_data, tmp_path, monkeypatch):
    # Step 3 is checkpointed (--save_every 3); the stop comes in step 4's
    # forward pass (Ctrl-C) or right after step 3 (stop_after): the checkpoint
    # of step 3 already holds everything a resume needs.
    flags = ("--epochs", "2", "--eval_every", "100", "--save_every", "3")
    whole = runs.run(_config(toy_data, tmp_path / "whole", *flags), show_progress=False)
    saved = _counting_saves(monkeypatch)
    if stop == "ctrl-c":
        state, resumed = _interrupted_then_resumed(toy_data, tmp_path / "cut", *flags, "--interrupt_at_call", "4")
    else:
        cut = runs.run(_config(toy_data, tmp_path / "cut", *flags), stop_after=3, show_progress=False)
        assert cut.train.interrupted
        state = json.loads((tmp_path / "cut" / "checkpoints" / "last" / "state.json").read_text())
        resumed = runs.run(_config(toy_data, tmp_path / "cut", *flags), resume=True, show_progress=False)
    assert state["step"] == 3 and saved[:2] == [3, 6], saved  # old code: [3, 3, 6, ...]
    assert _same(_adapter(resumed), _adapter(whole))


def test_a_sigterm_saves_the_run_as_ctrl_c_does(toy_host, toy_data, tmp_path, monkeypatch):
    # `kill PID`, or a cluster taking its machine back, sends SIGTERM: by
    # default it ends the process on the spot, losing the steps since the
    # last checkpoint.
    flags = ("--epochs", "2", "--eval_every", "100", "--lora.dropout", "0")
    whole = runs.run(_config(toy_data, tmp_path / "whole", *flags), show_progress=False)
    monkeypatch.setenv("TOY_SIGNAL_AT_CALL", "7")
    monkeypatch.setenv("TOY_SIGNAL", "SIGTERM")
    with pytest.raises(KeyboardInterrupt):
        runs.run(_config(toy_data, tmp_path / "cut", *flags), show_progress=False)
    monkeypatch.delenv("TOY_SIGNAL_AT_CALL")
    state = json.loads((tmp_path / "cut" / "checkpoints" / "last" / "state.json").read_text())
    assert state["step"] == 6  # the 7th step's forward pass was under way
    resumed = runs.run(_config(toy_data, tmp_path / "cut", *flags), resume=True, show_progress=False)
    assert _same(_adapter(resumed), _adapter(whole))
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # the run's handler is gone with it


def test_a_run_started_ignoring_ctrl_c_keeps_ignoring_it(toy_host, toy_data, tmp_path, monkeypatch):
    # A shell starts background jobs with SIGINT ignored: a Ctrl-C meant for
    # the foreground must not stop them.
    import lorakit.trainer

    seen, after_step = [], lorakit.trainer.Trainer._after_step

    def look(self, *args, **kwargs):
        seen.append((signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)))
        return after_step(self, *args, **kwargs)

    monkeypatch.setattr(lorakit.trainer.Trainer, "_after_step", look)
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        runs.run(_config(toy_data, tmp_path / "run", "--epochs", "1"), show_progress=False)
        assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
    finally:
        signal.signal(signal.SIGINT, previous)
    assert seen and {handlers[0] for handlers in seen} == {signal.SIG_IGN}
    assert all(callable(handlers[1]) for handlers in seen)  # SIGTERM saves the run meanwhile
