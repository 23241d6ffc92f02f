import json

import pytest
import torch
from safetensors.torch import load_file

from lorakit import runs
from lorakit.errors import ConfigError, TrainingError
from lorakit.run_data import load_splits


def _config(data, out, *flags, task="toy"):
    return runs.load_config(task, ["--data", str(data), "--output", str(out), "--lr", "0.02",
                                   "--batch_size", "16", "--lora.dropout", "0.1", *flags])


def test_toy_adapter_learns_on_held_out_data(toy_host, toy_data, tmp_path):
    outcome = runs.run(_config(toy_data, tmp_path / "run", "--epochs", "20"), show_progress=False)
    test = outcome.report["test"]
    assert test["adapter"]["mse"] < 0.1 * test["base"]["mse"]
    log = [json.loads(line) for line in (outcome.run_dir / "log.jsonl").read_text().splitlines()]
    assert {"train", "validation"} <= {r["event"] for r in log}
    assert list((outcome.run_dir / "tb").iterdir()), "TensorBoard events are written"


def test_resume_continues_exactly(toy_host, toy_data, tmp_path):
    flags = ("--epochs", "4", "--grad_accum", "2", "--eval_every", "3")
    whole = runs.run(_config(toy_data, tmp_path / "whole", *flags), show_progress=False)
    first = runs.run(_config(toy_data, tmp_path / "parts", *flags), stop_after=5, show_progress=False)
    assert first.train.interrupted and first.adapter_dir is None
    log = tmp_path / "parts" / "log.jsonl"
    with open(log, "a") as handle:  # what a kill after the checkpoint leaves: later steps, a torn line
        handle.write('{"event": "train", "step": 6, "loss": 1.0}\n{"event": "train", "st')
    resumed = runs.run(_config(toy_data, tmp_path / "parts", *flags), resume=True, show_progress=False)
    assert resumed.train.steps == whole.train.steps

    def events(run):
        return [(r["event"], r["step"]) for r in map(json.loads, (tmp_path / run / "log.jsonl").read_text().splitlines())]
    assert events("parts") == events("whole"), "every step logged once, in order, after a resume"
    a = load_file(str(whole.adapter_dir / "adapter_model.safetensors"))
    b = load_file(str(resumed.adapter_dir / "adapter_model.safetensors"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_a_moved_run_resumes_by_its_new_path_however_it_is_spelled(toy_host, toy_data, tmp_path, monkeypatch):
    """--output runs/a then --output /abs/runs/a --resume was refused as "another config", and so was a
    run folder moved to another disk: the run is wherever --resume finds it."""
    flags = ("--epochs", "4", "--eval_every", "3")
    whole = runs.run(_config(toy_data, tmp_path / "whole", *flags), show_progress=False)
    monkeypatch.chdir(tmp_path)
    cut = _config(toy_data, tmp_path / "whole", *flags)
    cut.output = "cut"  # relative, as typed in the working folder
    runs.run(cut, stop_after=5, show_progress=False)
    (tmp_path / "cut").rename(tmp_path / "moved")
    resumed = runs.run(_config(toy_data, tmp_path / "moved", *flags), resume=True, show_progress=False)
    a = load_file(str(whole.adapter_dir / "adapter_model.safetensors"))
    b = load_file(str(resumed.adapter_dir / "adapter_model.safetensors"))
    assert resumed.adapter_dir == tmp_path / "moved" / "adapter" and all(torch.equal(a[k], b[k]) for k in a)


def test_resume_refuses_another_number_of_processes(tmp_path):
    # Two processes' checkpoint resumed by one would take other batches per
    # step, another schedule and another place in the data, silently.
    from lorakit.checkpoints import capture_rng, load_checkpoint, save_checkpoint

    model = torch.nn.Linear(2, 2)
    optimizer = torch.optim.AdamW(model.parameters())
    save_checkpoint(tmp_path / "last", model, {"main": optimizer}, {}, {"step": 3}, [capture_rng(), capture_rng()])
    with pytest.raises(TrainingError, match=r"written by 2 process\(es\), and this is 1: resume it with accelerate "
                                            r"launch --num_processes 2"):
        load_checkpoint(tmp_path / "last", model, {"main": optimizer}, {}, rank=0, processes=1)
    assert load_checkpoint(tmp_path / "last", model, {"main": optimizer}, {}, rank=1, processes=2)["step"] == 3


def test_resume_refuses_another_config(toy_host, toy_data, tmp_path):
    runs.run(_config(toy_data, tmp_path / "r", "--epochs", "2"), stop_after=2, show_progress=False)
    with pytest.raises(ConfigError, match="train.epochs"):
        runs.run(_config(toy_data, tmp_path / "r", "--epochs", "3"), resume=True, show_progress=False)


def test_non_finite_loss_stops_and_keeps_last_good_checkpoint(toy_host, toy_data, tmp_path):
    config = _config(toy_data, tmp_path / "nan", "--epochs", "3", "--save_every", "2", "--nan_at_call", "6")
    with pytest.raises(TrainingError) as info:
        runs.run(config, show_progress=False)
    assert "loss is nan" in str(info.value) and "checkpoints/last" in str(info.value)
    state = json.loads((tmp_path / "nan" / "checkpoints" / "last" / "state.json").read_text())
    assert state["step"] == 4
    weights = load_file(str(tmp_path / "nan" / "checkpoints" / "last" / "trainable.safetensors"))
    assert all(torch.isfinite(t).all() for t in weights.values())


def test_early_stopping_keeps_the_best_weights(toy_host, toy_data, tmp_path):
    # A huge learning rate makes validation worse after the first evaluations.
    config = _config(toy_data, tmp_path / "es", "--epochs", "30", "--train.lr", "0.5", "--patience", "2", "--eval_every", "2")
    outcome = runs.run(config, show_progress=False)
    assert outcome.train.stopped_early and outcome.train.steps < outcome.train.total_steps
    history = outcome.train.history
    best = min(h["val_loss"] for h in history)
    assert outcome.train.best_metric == pytest.approx(best)
    assert history[-1]["val_loss"] > best
    # The adapter written is the best one: its validation loss is the best, not the last.
    task, base, model, _, _ = runs.open_adapter(outcome.run_dir)
    validation = load_splits(task, base, config).val
    assert task.evaluate(base, model, validation)["mse"] == pytest.approx(best, rel=1e-4)


def test_two_optimizers_each_update_their_own_parameters(toy_host, toy_data, tmp_path):
    outcome = runs.run(_config(toy_data, tmp_path / "two", "--epochs", "6", task="toy-pair"), show_progress=False)
    assert outcome.report["test"]["adapter"]["mse"] < 0.5 * outcome.report["test"]["base"]["mse"]
    saved = torch.load(tmp_path / "two" / "checkpoints" / "last" / "trainer_state.pt", weights_only=True)
    assert set(saved["optimizers"]) == {"encoder", "head"}
    log = [json.loads(line) for line in (outcome.run_dir / "log.jsonl").read_text().splitlines()]
    assert {"loss_encoder", "loss_head"} <= set(next(r for r in log if r["event"] == "train"))


def test_each_optimizer_group_gets_its_own_lr_and_betas(toy_host, toy_data, tmp_path):
    """OptimizerGroup(lr=..., betas=...) reaches that group's AdamW; unset
    fields take train.lr, AdamW's betas and train.weight_decay."""
    config = _config(toy_data, tmp_path / "groups", "--max_steps", "4", "--weight_decay", "0.01",
                     "--head_lr", "0.005", "--head_betas", "[0.8, 0.99]", task="toy-pair")
    runs.run(config, show_progress=False, evaluate=False)
    saved = torch.load(tmp_path / "groups" / "checkpoints" / "last" / "trainer_state.pt", weights_only=True)
    (head,) = saved["optimizers"]["head"]["param_groups"]
    (encoder,) = saved["optimizers"]["encoder"]["param_groups"]
    assert head["initial_lr"] == pytest.approx(0.005) and tuple(head["betas"]) == (0.8, 0.99)
    assert encoder["initial_lr"] == pytest.approx(0.02) and tuple(encoder["betas"]) == (0.9, 0.999)
    assert head["weight_decay"] == encoder["weight_decay"] == pytest.approx(0.01)
    # Both follow the same warmup + cosine schedule, each from its own peak.
    assert head["lr"] / head["initial_lr"] == pytest.approx(encoder["lr"] / encoder["initial_lr"])
    # The log's lr is the run's train.lr schedule; the head's own rate is named.
    log = [json.loads(line) for line in (tmp_path / "groups" / "log.jsonl").read_text().splitlines()]
    last = [record for record in log if record["event"] == "train"][-1]
    assert last["step"] == 4
    assert last["lr"] == pytest.approx(encoder["lr"]) and last["lr_head"] == pytest.approx(head["lr"])


def test_replay_mixes_retain_examples_into_each_epoch(toy_host, toy_data, tmp_path):
    from toy_plugin import write_toy_data

    retain = write_toy_data(tmp_path / "retain", n=40, seed=5)
    config = _config(toy_data, tmp_path / "replay", "--epochs", "1", "--retain", str(retain), "--replay", "0.5")
    outcome = runs.run(config, show_progress=False)
    assert set(outcome.report) == {"test", "retain"}
    assert outcome.report["retain"]["examples"] == 20
    assert outcome.report["retain"]["note"] == ("retain scores 20 of the 40 retain examples; the other 20 were "
                                                "replayed in training (--replay)")
    # 180 train examples + as many replayed ones, batches of 16.
    assert outcome.train.total_steps == 23
    # Evaluated later on other data, the retain half it held out is the same.
    later = runs.evaluate_run(outcome.run_dir, data=str(write_toy_data(tmp_path / "other", n=30, seed=6)))
    assert later["test"]["examples"] == 30 and later["retain"]["note"] == outcome.report["retain"]["note"]
    assert later["retain"]["adapter"]["mse"] == pytest.approx(outcome.report["retain"]["adapter"]["mse"], rel=1e-6)


def test_without_replay_the_whole_retain_set_is_evaluated(toy_host, toy_data, tmp_path):
    from toy_plugin import write_toy_data

    retain = write_toy_data(tmp_path / "retain", n=40, seed=5)
    outcome = runs.run(_config(toy_data, tmp_path / "kept", "--epochs", "1", "--retain", str(retain)),
                       show_progress=False)
    assert outcome.report["retain"]["examples"] == 40 and "note" not in outcome.report["retain"]
    manifest = json.loads((outcome.adapter_dir / "lorakit.json").read_text())
    assert manifest["data"]["splits"]["retain_test"] == 40 and manifest["data"]["splits"]["retain_replayed"] == 0


def test_unknown_metric_is_refused_before_the_base_loads(toy_host, toy_data, tmp_path, monkeypatch):
    monkeypatch.setattr(runs, "training_model", lambda *a, **k: pytest.fail("the base was loaded"))
    with pytest.raises(ConfigError, match="'cider' is not a metric of task 'toy'; valid: val_loss, mae, mse"):
        runs.run(_config(toy_data, tmp_path / "m", "--train.metric", "cider"), show_progress=False)
    assert not (tmp_path / "m").exists()


def test_an_optional_metric_can_be_watched_under_its_option(toy_host, toy_data, tmp_path):
    """The best weights are those of the lowest validation mae, a metric the
    toy measures only with --report_mae."""
    outcome = runs.run(_config(toy_data, tmp_path / "mae", "--epochs", "4", "--eval_every", "2",
                               "--train.metric", "mae", "--report_mae", "true"), show_progress=False)
    validations = [(entry["step"], entry["mae"]) for entry in outcome.train.history]
    assert len(validations) >= 3
    best_step, best_mae = min(validations, key=lambda v: v[1])
    assert (outcome.train.best_step, outcome.train.best_metric) == (best_step, pytest.approx(best_mae))
    assert outcome.report["test"]["adapter"]["mae"] < outcome.report["test"]["base"]["mae"]


def test_the_watched_metric_chooses_the_weights_kept_not_the_training(toy_host, toy_data, tmp_path):
    flags = ("--epochs", "2", "--eval_every", "3", "--report_mae", "true")
    by_mae = runs.run(_config(toy_data, tmp_path / "mae", *flags, "--train.metric", "mae"), show_progress=False)
    by_mse = runs.run(_config(toy_data, tmp_path / "mse", *flags, "--train.metric", "mse"), show_progress=False)
    history = by_mae.train.history
    assert len(history) >= 3 and [e["val_loss"] for e in history] == [e["val_loss"] for e in by_mse.train.history]
    for outcome, metric in ((by_mae, "mae"), (by_mse, "mse")):
        assert outcome.train.best_step == min(outcome.train.history, key=lambda e: e[metric])["step"]


def test_the_task_evaluates_without_autograd_while_training(toy_host, toy_data, tmp_path, monkeypatch):
    """A task's evaluate need not turn autograd off: validation does (graphs
    built for nothing would hold memory while it runs)."""
    from toy_plugin import ToyTask

    grad_enabled, evaluate = [], ToyTask.evaluate
    monkeypatch.setattr(ToyTask, "evaluate", lambda *a: grad_enabled.append(torch.is_grad_enabled()) or evaluate(*a))
    runs.run(_config(toy_data, tmp_path / "run", "--epochs", "1", "--eval_every", "3", "--train.metric", "mae",
                     "--report_mae", "true"), show_progress=False, evaluate=False)
    assert len(grad_enabled) >= 3 and not any(grad_enabled)


def test_an_optional_metric_without_its_option_is_refused_before_training(toy_host, toy_data, tmp_path, monkeypatch):
    from lorakit.trainer import Trainer

    monkeypatch.setattr(Trainer, "fit", lambda *a, **k: pytest.fail("training started"))
    with pytest.raises(ConfigError, match=r"'mae': task 'toy' measures it only under one of its options, and with "
                                          r"this run's options it measures mse; .*lorakit run toy --help"):
        runs.run(_config(toy_data, tmp_path / "no-option", "--train.metric", "mae"), show_progress=False)
    assert not (tmp_path / "no-option").exists()


def test_the_option_that_turns_an_optional_metric_on_is_named(toy_host, toy_data, tmp_path, monkeypatch):
    from lorakit.trainer import Trainer
    from toy_plugin import ToyTask

    monkeypatch.setattr(ToyTask, "metric_options", {"mae": "report_mae"})
    monkeypatch.setattr(Trainer, "fit", lambda *a, **k: pytest.fail("training started"))
    with pytest.raises(ConfigError, match=r"'mae': task 'toy' measures it only under its option --report_mae, and "
                                          r"with this run's options it measures mse; set --report_mae "):
        runs.run(_config(toy_data, tmp_path / "no-option", "--train.metric", "mae"), show_progress=False)


@pytest.mark.parametrize("made, said", [
    (lambda loss: torch.nn.functional.mse_loss(*loss, reduction="none"), r"a tensor of shape \[\d+(, \d+)*\] \(reduce"),
    (lambda loss: float(torch.nn.functional.mse_loss(*loss)), "a float"),
    (lambda loss: torch.nn.functional.mse_loss(*loss).detach(), "a tensor without gradients"),
])
def test_a_loss_the_loop_cannot_step_on_names_the_method(toy_host, toy_data, tmp_path, monkeypatch, made, said):
    from lorakit.errors import PluginError
    from toy_plugin import ToyTask

    monkeypatch.setattr(ToyTask, "loss", lambda self, base, model, batch: made((model(batch["x"]), batch["y"])))
    with pytest.raises(PluginError, match=r"task 'toy': loss must return one number as a 0-dim tensor that requires "
                                          rf"grad; got {said}"):
        runs.run(_config(toy_data, tmp_path / "run", "--epochs", "1"), show_progress=False)
    assert not (tmp_path / "run").exists()


def test_an_evaluate_without_a_declared_metric_is_the_task_s_error(toy_host, toy_data, tmp_path, monkeypatch):
    from lorakit.errors import PluginError
    from toy_plugin import ToyTask

    evaluate = ToyTask.evaluate
    monkeypatch.setattr(ToyTask, "evaluate", lambda *a: {"err": evaluate(*a)["mse"]})
    with pytest.raises(PluginError, match=r"task 'toy': evaluate returned err, without mse that its metrics declare"):
        runs.run(_config(toy_data, tmp_path / "renamed", "--epochs", "1", "--train.metric", "mse"), show_progress=False)
    monkeypatch.setattr(ToyTask, "evaluate", lambda *a: {"mse": "low"})
    with pytest.raises(PluginError, match=r"task 'toy': evaluate's mse must be a number; got 'low'"):
        runs.run(_config(toy_data, tmp_path / "text", "--epochs", "1"), show_progress=False)


def test_load_data_returning_a_list_is_named_in_one_line(toy_host, toy_data, tmp_path, monkeypatch):
    from lorakit.errors import PluginError
    from toy_plugin import ToyTask

    load_data = ToyTask.load_data
    monkeypatch.setattr(ToyTask, "load_data", lambda *a, **k: load_data(*a, **k).examples)
    with pytest.raises(PluginError, match=r"task 'toy': load_data must return lorakit.api.Data\(examples, summary\), "
                                          "not list"):
        runs.run(_config(toy_data, tmp_path / "run"), show_progress=False)
    assert not (tmp_path / "run").exists()


def test_failure_before_the_first_checkpoint_leaves_no_folder(toy_host, toy_data, tmp_path):
    config = _config(toy_data, tmp_path / "early-nan", "--epochs", "3", "--nan_at_call", "1")
    with pytest.raises(TrainingError, match="no checkpoint was written yet"):
        runs.run(config, show_progress=False)
    assert not (tmp_path / "early-nan").exists()


def test_ctrl_c_saves_the_last_completed_step_and_resume_finishes(toy_host, toy_data, tmp_path):
    flags = ("--epochs", "2")
    with pytest.raises(KeyboardInterrupt):
        runs.run(_config(toy_data, tmp_path / "c", *flags, "--interrupt_at_call", "8"), show_progress=False)
    state = json.loads((tmp_path / "c" / "checkpoints" / "last" / "state.json").read_text())
    assert state["step"] == 7
    resumed = runs.run(_config(toy_data, tmp_path / "c", *flags, "--interrupt_at_call", "8"), resume=True, show_progress=False)
    assert resumed.train.steps == resumed.train.total_steps == 24


def test_report_of_a_bf16_run_agrees_with_a_later_evaluate(toy_host, toy_data, tmp_path):
    """Training under bf16 autocast must not leave the autocast forward on the
    model the run evaluates: report.json and `lorakit evaluate` (full
    precision) give the same metric."""
    from accelerate.state import AcceleratorState

    config = runs.load_config("toy", ["--data", str(toy_data), "--output", str(tmp_path / "run"),
                                      "--train.precision", "bf16", "--epochs", "2"])
    AcceleratorState._reset_state(True)  # one process, one precision: a test process runs many
    try:
        outcome = runs.run(config, show_progress=False)
    finally:
        AcceleratorState._reset_state(True)
    later = runs.evaluate_run(outcome.run_dir)
    assert outcome.report["test"]["adapter"]["mse"] == pytest.approx(later["test"]["adapter"]["mse"], rel=1e-6)
    assert outcome.report["test"]["base"]["mse"] == pytest.approx(later["test"]["base"]["mse"], rel=1e-6)


def test_the_loop_waits_for_the_device_only_at_log_steps(toy_host, toy_data, tmp_path, monkeypatch):
    """No host sync per step: the loop reads a tensor's value (item, float,
    bool, tolist) as often for 40 steps as for 10 when nothing is logged,
    validated or saved in between. (Torch's AdamW reads its step counter,
    a CPU tensor even on a GPU: not a sync, and not counted.)"""
    import sys

    reads = []

    def counted(original):
        def read(self, *args, **kwargs):
            if sys._getframe(1).f_code.co_filename.endswith("lorakit/trainer.py"):
                reads.append(1)
            return original(self, *args, **kwargs)
        return read

    for name in ("item", "__float__", "__bool__", "tolist"):
        monkeypatch.setattr(torch.Tensor, name, counted(getattr(torch.Tensor, name)))

    def count(steps):
        reads.clear()
        flags = ("--batch_size", "4", "--max_steps", str(steps), "--log_every", "1000", "--data.val_fraction", "0")
        runs.run(_config(toy_data, tmp_path / f"s{steps}", *flags), evaluate=False, show_progress=False)
        return len(reads)

    assert count(10) == count(40) <= 3


def test_one_data_loader_serves_the_whole_run_and_workers_change_nothing(toy_host, toy_data, tmp_path, monkeypatch):
    import lorakit.trainer

    made = []
    original = lorakit.trainer.run_loader
    monkeypatch.setattr(lorakit.trainer, "run_loader", lambda *a, **k: made.append(1) or original(*a, **k))
    flags = ("--epochs", "3", "--eval_every", "5")
    inline = runs.run(_config(toy_data, tmp_path / "inline", *flags), show_progress=False)
    assert len(made) == 1
    first = runs.run(_config(toy_data, tmp_path / "workers", *flags, "--num_workers", "2"), stop_after=7,
                     show_progress=False)
    resumed = runs.run(_config(toy_data, tmp_path / "workers", *flags, "--num_workers", "2"), resume=True,
                       show_progress=False)
    assert first.train.interrupted and resumed.train.steps == inline.train.steps
    a = load_file(str(inline.adapter_dir / "adapter_model.safetensors"))
    b = load_file(str(resumed.adapter_dir / "adapter_model.safetensors"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_resume_of_a_run_killed_before_its_first_checkpoint_starts_it_again(toy_host, toy_data, tmp_path):
    """kill -9 before the first checkpoint leaves config.yaml, log.jsonl and tb/:
    --resume starts the run from the beginning instead of refusing."""
    flags = ("--epochs", "2")
    whole = runs.run(_config(toy_data, tmp_path / "whole", *flags), show_progress=False)
    killed = tmp_path / "killed"
    killed.mkdir()
    (killed / "config.yaml").write_text((whole.run_dir / "config.yaml").read_text().replace(str(tmp_path / "whole"), str(killed)))
    (killed / "log.jsonl").write_text('{"event": "train", "step": 1, "loss": 9.9}\n')
    (killed / "tb").mkdir()
    again = runs.run(_config(toy_data, killed, *flags), resume=True, show_progress=False)
    assert again.train.steps == whole.train.steps
    a = load_file(str(whole.adapter_dir / "adapter_model.safetensors"))
    b = load_file(str(again.adapter_dir / "adapter_model.safetensors"))
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert '"loss": 9.9' not in (killed / "log.jsonl").read_text()


def test_the_tasks_verdict_goes_into_the_report(toy_host, toy_data, tmp_path, monkeypatch):
    """A task's judge sees the held-out scores of base and adapter; its words land in report.json."""
    from toy_plugin import ToyTask

    seen = []

    def judge(self, base_scores, adapter_scores):
        seen.append((base_scores, adapter_scores))
        return [f"mse only {adapter_scores['mse']:.3f}"]

    monkeypatch.setattr(ToyTask, "judge", judge)
    outcome = runs.run(_config(toy_data, tmp_path / "run", "--train.max_steps", "2"), show_progress=False)
    test = outcome.report["test"]
    assert seen == [(test["base"], test["adapter"])]
    assert test["verdict"] == [f"mse only {test['adapter']['mse']:.3f}"]
    assert json.loads((outcome.run_dir / "report.json").read_text())["test"]["verdict"] == test["verdict"]


def test_an_adapter_no_better_than_the_base_is_said_so_by_default(toy_host, toy_data, tmp_path):
    """Without a judge of its own, a task hears when its headline metric did
    not improve (and nothing when it did); the test above shows a verdict
    reaching the report."""
    from toy_plugin import ToyTask

    learned = runs.run(_config(toy_data, tmp_path / "learned"), show_progress=False).report["test"]
    assert learned["adapter"]["mse"] < learned["base"]["mse"] and "verdict" not in learned
    judge = ToyTask().judge
    [line] = judge({"mse": 0.25}, {"mse": 0.25})
    assert line.startswith("the adapter does no better than the base on held-out mse (0.25 -> 0.25)")
    assert "--train.lr" in line and len(judge({"mse": 1.0}, {"mse": 1.5})) == 1
    assert judge({"mse": 1.0}, {"mse": 0.5}) == []
    assert judge({"mse": float("nan")}, {"mse": 1.0}) == judge({}, {}) == []

    class Scored(ToyTask):
        metrics = {"accuracy": "max", "mse": "min"}

    assert len(Scored().judge({"accuracy": 0.8}, {"accuracy": 0.7})) == 1
    assert Scored().judge({"accuracy": 0.8}, {"accuracy": 0.9, "mse": 9.0}) == []  # the headline metric speaks


def test_a_run_given_relative_data_paths_is_evaluated_and_resumed_from_any_folder(toy_host, tmp_path, monkeypatch):
    """config.yaml names the data as the run read it: relative paths are
    made absolute against the folder the run started in."""
    import toy_plugin
    import yaml

    project = tmp_path / "project"
    toy_plugin.write_toy_data(project / "points")
    toy_plugin.write_toy_data(project / "old", seed=1)
    monkeypatch.chdir(project)
    flags = ["--data", "points", "--retain", "old", "--output", "runs/toy-1", "--epochs", "2", "--batch_size", "16"]
    first = runs.run(runs.load_config("toy", flags), stop_after=3, show_progress=False)
    assert first.adapter_dir is None
    saved = yaml.safe_load((project / "runs" / "toy-1" / "config.yaml").read_text())["data"]
    assert saved["path"] == str(project / "points") and saved["retain"] == str(project / "old")
    outcome = runs.run(runs.load_config("toy", flags), resume=True, show_progress=False)  # the same command again

    monkeypatch.chdir(tmp_path)  # elsewhere: the run folder by its path, the data as recorded
    later = runs.evaluate_run(project / "runs" / "toy-1")
    for split in ("test", "retain"):
        assert later[split]["adapter"]["mse"] == pytest.approx(outcome.report[split]["adapter"]["mse"], rel=1e-6)


def test_a_run_saved_with_relative_data_paths_still_resumes_from_its_folder(toy_host, tmp_path, monkeypatch):
    import toy_plugin
    import yaml

    toy_plugin.write_toy_data(tmp_path / "points")
    monkeypatch.chdir(tmp_path)
    flags = ["--data", "points", "--output", "run", "--epochs", "2", "--batch_size", "16"]
    runs.run(runs.load_config("toy", flags), stop_after=3, show_progress=False)
    saved = tmp_path / "run" / "config.yaml"
    config = yaml.safe_load(saved.read_text())
    config["data"]["path"] = "points"  # as runs wrote it before paths were stored absolute
    saved.write_text(yaml.safe_dump(config, sort_keys=False))
    assert runs.run(runs.load_config("toy", flags), resume=True, show_progress=False).adapter_dir is not None
    with pytest.raises(ConfigError, match="data.path"):  # other data is still another config
        toy_plugin.write_toy_data(tmp_path / "other")
        runs.run(runs.load_config("toy", [*flags[:1], "other", *flags[2:]]), resume=True, show_progress=False)
