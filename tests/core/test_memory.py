"""Memory and precision settings: what is refused where, and fp16's gradient scaler."""

import json

import pytest
import torch
from safetensors.torch import load_file

from lorakit import runs
from lorakit.device import mixed_precision
from lorakit.errors import ConfigError, TrainingError


def _config(data, out, *flags):
    return runs.load_config("toy", ["--data", str(data), "--output", str(out), "--lr", "0.02",
                                    "--batch_size", "16", *flags])


def test_base_dtype_is_checked_against_the_machine_and_the_precision(toy_host):
    assert mixed_precision("auto", "bf16") == "bf16"  # a bf16 base computes in bf16 autocast, on a CPU too
    assert mixed_precision("auto", "fp32") == "no"
    for base_dtype in ("fp16", "4bit"):
        with pytest.raises(ConfigError, match=f"base_dtype = '{base_dtype}' needs a CUDA GPU"):
            mixed_precision("auto", base_dtype)
    with pytest.raises(ConfigError, match="--train.precision auto"):
        mixed_precision("no", "bf16")
    with pytest.raises(ConfigError, match="base_dtype = 'int3' is invalid"):
        runs.load_config("toy", ["--base_dtype", "int3"])


def test_a_model_without_checkpointing_is_refused_by_name(toy_host, toy_data, tmp_path):
    config = _config(toy_data, tmp_path / "run", "--train.gradient_checkpointing", "true")
    with pytest.raises(ConfigError, match=r"'toy' task's model \(\w+\) has no gradient checkpointing"):
        runs.run(config, show_progress=False)
    assert not (tmp_path / "run").exists()


@pytest.fixture
def own_precision():
    """These tests set this process's accelerate state to fp16: reset it after."""
    from accelerate.state import AcceleratorState

    yield
    AcceleratorState._reset_state(True)


def _with_cpu_scaler(monkeypatch, init_scale: float) -> None:
    """Runs get an fp16-style accelerator: accelerate makes no gradient scaler
    on a CPU, so one is given (torch has a CPU GradScaler)."""
    from accelerate import Accelerator
    from accelerate.state import AcceleratorState

    import lorakit.device

    def scaled(precision="auto", base_dtype="fp32"):
        AcceleratorState._reset_state(True)
        accelerator = Accelerator(cpu=True, mixed_precision="fp16")
        accelerator.scaler = torch.amp.GradScaler("cpu", init_scale=init_scale)
        accelerator.native_amp = True  # so that clipping unscales first, as on a GPU
        return accelerator

    monkeypatch.setattr(lorakit.device, "make_accelerator", scaled)


def test_overflow_steps_the_scaler_skips_are_tolerated(toy_host, toy_data, tmp_path, monkeypatch, own_precision):
    """A scale far too large overflows the first steps; the scaler halves it
    and skips them, and training goes on to learn (it used to stop at the
    first non-finite gradient norm)."""
    _with_cpu_scaler(monkeypatch, init_scale=2.0 ** 30)
    outcome = runs.run(_config(toy_data, tmp_path / "run", "--epochs", "12", "--log_every", "1"), show_progress=False)
    log = [json.loads(line) for line in (outcome.run_dir / "log.jsonl").read_text().splitlines()]
    skipped = [r["skipped_steps"] for r in log if r["event"] == "train"]
    assert 0 < skipped[-1] < 20 and skipped[-1] == skipped[len(skipped) // 2]
    test = outcome.report["test"]
    assert test["adapter"]["mse"] < 0.3 * test["base"]["mse"]


def test_with_two_optimizers_each_step_s_gradients_share_one_scale(toy_host, toy_data, tmp_path, monkeypatch,
                                                                     own_precision):
    """toy-pair steps its encoder, then computes the head's loss: the scale
    must not change in between, or the head's accumulated gradients mix two
    scales (its earlier micro-steps' count half or double once unscaled)."""
    import lorakit.trainer

    _with_cpu_scaler(monkeypatch, init_scale=2.0 ** 30)  # overflows at first: the scale halves, step after step
    events = []
    scale, after_step = torch.amp.GradScaler.scale, lorakit.trainer.Trainer._after_step
    monkeypatch.setattr(torch.amp.GradScaler, "scale", lambda self, out: events.append(self.get_scale()) or scale(self, out))
    monkeypatch.setattr(lorakit.trainer.Trainer, "_after_step",
                        lambda self, *a, **k: events.append("step") or after_step(self, *a, **k))
    config = runs.load_config("toy-pair", ["--data", str(toy_data), "--output", str(tmp_path / "run"), "--lr", "0.02",
                                           "--batch_size", "16", "--grad_accum", "2", "--max_steps", "12"])
    runs.run(config, show_progress=False)
    steps, current = [], []
    for event in events:
        if event == "step":
            steps.append(current)
            current = []
        else:
            current.append(event)
    assert len(steps) == 12 and all(len(scales) == 4 for scales in steps)  # 2 micro-steps x 2 groups
    assert len({scales[0] for scales in steps}) > 3  # the scale did fall, step after step
    assert all(len(set(scales)) == 1 for scales in steps), steps


def test_resume_keeps_the_scale_the_scaler_had_reached(toy_host, toy_data, tmp_path, monkeypatch, own_precision):
    """A resumed fp16 run started its scaler again at the first scale, which
    overflows: steps the uninterrupted run took were skipped, and the skip
    count started again from 0."""
    _with_cpu_scaler(monkeypatch, init_scale=2.0 ** 30)
    flags = ("--epochs", "3", "--log_every", "1")
    whole = runs.run(_config(toy_data, tmp_path / "whole", *flags), show_progress=False)
    runs.run(_config(toy_data, tmp_path / "cut", *flags), stop_after=12, show_progress=False)
    resumed = runs.run(_config(toy_data, tmp_path / "cut", *flags), resume=True, show_progress=False)

    def skipped(run):
        return [r["skipped_steps"] for r in map(json.loads, (run / "log.jsonl").read_text().splitlines())
                if r["event"] == "train"]
    assert skipped(tmp_path / "cut") == skipped(tmp_path / "whole") and skipped(tmp_path / "whole")[-1] > 0
    a = load_file(str(whole.adapter_dir / "adapter_model.safetensors"))
    b = load_file(str(resumed.adapter_dir / "adapter_model.safetensors"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_after_training_on_a_bf16_base_it_is_freed_before_the_full_base_loads(toy_host, toy_data, tmp_path,
                                                                                monkeypatch):
    """The report is measured on a freshly loaded full-precision base; the
    reduced one (still referenced by accelerate) stayed in memory beside it."""
    import gc
    import weakref

    reduced, freed = [], []
    make, reload = runs.training_model, runs._on_full_precision_base

    def remembered(*args, **kwargs):
        made = make(*args, **kwargs)
        reduced.extend([weakref.ref(made.base.model), weakref.ref(made.model)])
        return made

    def checked(*args, **kwargs):
        gc.collect()
        freed.append([ref() is None for ref in reduced])
        return reload(*args, **kwargs)

    monkeypatch.setattr(runs, "training_model", remembered)
    monkeypatch.setattr(runs, "_on_full_precision_base", checked)
    outcome = runs.run(_config(toy_data, tmp_path / "run", "--epochs", "2", "--base_dtype", "bf16"),
                       show_progress=False)
    assert outcome.report and freed == [[True, True]]


def test_a_run_of_skipped_steps_stops_with_advice(toy_host, toy_data, tmp_path, monkeypatch, own_precision):
    _with_cpu_scaler(monkeypatch, init_scale=float("inf"))  # every step overflows, at any scale
    with pytest.raises(TrainingError, match="skipped 20 optimizer steps in a row.*--train.precision bf16"):
        runs.run(_config(toy_data, tmp_path / "run", "--epochs", "12"), show_progress=False)


def test_4bit_quantizes_every_linear_but_the_kept_ones_and_lora_trains_on_them():
    """The QLoRA conversion (run here on the CPU, where a training step works;
    runs use it on CUDA only): Linear layers become NF4, modules trained
    fully stay as they are, and LoRA on the 4-bit layers gets gradients."""
    pytest.importorskip("bitsandbytes")
    import bitsandbytes as bnb
    from peft import LoraConfig, get_peft_model

    from lorakit.memory import hold_base

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(64, 64), torch.nn.LayerNorm(64), torch.nn.ReLU(), torch.nn.Linear(64, 8))
    x = torch.randn(16, 64)
    expected = model(x)
    quantized = hold_base(model, "4bit", keep=["3"], device="cpu")
    assert type(quantized[0]) is bnb.nn.Linear4bit and type(quantized[3]) is torch.nn.Linear
    assert quantized[0].weight.dtype == torch.uint8  # packed NF4: two weights a byte
    peft_model = get_peft_model(quantized, LoraConfig(r=4, target_modules=["0"], modules_to_save=["3"]))
    peft_model.train()
    out = peft_model(x)
    assert (out - expected).abs().max() < 0.15 * expected.abs().max()  # NF4 keeps the function close
    out.float().pow(2).mean().backward()
    grads = {n: p.grad for n, p in peft_model.named_parameters() if p.requires_grad}
    assert grads and all(g is not None for g in grads.values())
    assert grads["base_model.model.0.lora_B.default.weight"].abs().sum() > 0  # (A's is zero while B starts at zero)


@pytest.mark.parametrize("flag, value", [("--lora.r", "1000000"), ("--train.batch_size", "100000000"),
                                         ("--train.grad_accum", "0"), ("--train.epochs", "10000000000")])
def test_absurd_settings_are_refused_before_anything_is_allocated(toy_host, flag, value):
    with pytest.raises(ConfigError, match=f"{flag.lstrip('-')} = {value} is invalid"):
        runs.load_config("toy", [flag, value])


@pytest.mark.parametrize("error", [torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB"),
                                   RuntimeError("[enforce fail at alloc_cpu.cpp:121] DefaultCPUAllocator: "
                                                "can't allocate memory: you tried to allocate 384000000000000 bytes")])
def test_out_of_memory_names_the_settings_that_drive_memory(toy_host, toy_data, tmp_path, monkeypatch, error):
    import toy_plugin

    def exhausted(self, base, model, batch):
        raise error

    monkeypatch.setattr(toy_plugin.ToyTask, "loss", exhausted)
    with pytest.raises(TrainingError, match=r"ran out of .*train.batch_size 16, lora.r 8.*lorakit plan"):
        runs.run(_config(toy_data, tmp_path / "run", "--epochs", "1"), show_progress=False)
    assert not (tmp_path / "run").exists()
