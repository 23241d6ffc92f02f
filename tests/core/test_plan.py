"""`lorakit plan`: the predicted peak is checked against a measured one (the
real training loop in a fresh process), its parts against the model's own
tensors, and what it advises against the budget."""

import json

import pytest
from click.testing import CliRunner

import plan_plugin
from lorakit.cli import cli
from lorakit.errors import ConfigError
from lorakit.planning import TRAINED_BYTES, parse_memory, plan
from lorakit.runs import load_config

BATCH = 24
LORA_R = 8


@pytest.fixture
def wide(tmp_path):
    """The wide task registered, and its data folder."""
    from lorakit.plugins import get_host

    get_host().add_plugin(plan_plugin, "plan_plugin")
    return plan_plugin.write_data(tmp_path / "wide-data")


def config_of(data, *flags):
    return load_config("wide", ["--data", str(data), "--train.batch_size", str(BATCH), "--lora.r", str(LORA_R), *flags])


def base_bytes() -> int:
    return sum(p.numel() * 4 for p in plan_plugin.WideModel().parameters())


def trained_parameters() -> int:
    lora = plan_plugin.BLOCKS * LORA_R * 2 * plan_plugin.WIDTH  # A and B of every block's proj
    head = plan_plugin.WIDTH + 1  # the head trains fully: a copy beside the frozen original
    return lora + head


def test_parts_are_the_models_own_tensors_and_add_up(wide):
    result = plan(config_of(wide))
    estimate = result.estimate
    assert estimate.weights == base_bytes()
    assert result.trained_parameters == trained_parameters()
    assert estimate.trained == trained_parameters() * TRAINED_BYTES
    assert result.peak == estimate.weights + estimate.trained + estimate.activations.at(BATCH)
    # Long sequences through gated blocks: activations are most of the peak,
    # so the comparison with the measured peak below tests them.
    assert estimate.activations.at(BATCH) > 5 * estimate.weights
    half = plan(config_of(wide, "--base_dtype", "bf16")).estimate
    assert half.weights == estimate.weights // 2
    assert half.activations.per_example < 0.6 * estimate.activations.per_example


@pytest.mark.slow
def test_prediction_is_within_a_quarter_of_the_measured_peak(wide):
    from lorakit.peak import measure

    config = config_of(wide)
    predicted = plan(config).peak
    measured = measure(config, plugins=["plan_plugin"])
    assert measured.device == "cpu" and measured.batch_size == BATCH
    assert abs(predicted / measured.peak - 1) <= 0.25, (predicted, measured)


@pytest.mark.slow
@pytest.mark.parametrize("flags", [("--base_dtype", "bf16"), ("--train.gradient_checkpointing", "true")])
def test_prediction_with_memory_savers_is_within_a_quarter_of_the_measured_peak(wide, flags):
    from lorakit.peak import measure

    config = config_of(wide, *flags)
    measured = measure(config, plugins=["plan_plugin"])
    assert abs(plan(config).peak / measured.peak - 1) <= 0.25, (plan(config).peak, measured)


def test_advice_follows_the_budget(wide):
    estimate = plan(config_of(wide)).estimate
    roomy = plan(config_of(wide), budget=int(estimate.total(BATCH) * 2))
    assert roomy.option is None and roomy.estimate.largest_batch(roomy.budget) >= 2 * BATCH - 1
    assert "fits" in roomy.advice

    tight = plan(config_of(wide, "--train.grad_accum", "2"), budget=int(estimate.total(BATCH // 3)))
    assert tight.option.batch_size in (BATCH // 3 - 1, BATCH // 3)
    assert tight.option.batch_size * tight.option.grad_accum >= BATCH * 2
    assert f"--train.batch_size {tight.option.batch_size}" in tight.option.flags

    hopeless = plan(config_of(wide), budget=10_000)
    assert hopeless.option is None and "does not fit" in hopeless.advice


def test_a_batch_larger_than_the_data_is_planned_as_the_whole_epoch(tmp_path, wide):
    few = plan_plugin.write_data(tmp_path / "few", n=12)
    small = plan(config_of(few), budget=2 * 10**9)
    assert 0 < small.epoch_examples < BATCH and small.batch == small.epoch_examples
    assert small.peak == small.estimate.total(small.epoch_examples)
    assert f"more than the {small.epoch_examples} training examples" in small.advice
    estimate = plan(config_of(wide)).estimate
    enough = plan(config_of(wide), budget=int(estimate.total(BATCH + 1)))
    assert enough.epoch_examples > BATCH + 1 and enough.batch == BATCH
    assert enough.advice.endswith(f"batch sizes up to {BATCH + 1}")


def test_when_one_example_does_not_fit_checkpointing_then_a_bf16_base_is_advised(wide):
    one = {flags: plan(config_of(wide, *flags)).estimate.total(1)
           for flags in ((), ("--train.gradient_checkpointing", "true"),
                         ("--train.gradient_checkpointing", "true", "--base_dtype", "bf16"))}
    plain, checkpointed, both = one.values()
    assert plain > checkpointed > both
    advised = plan(config_of(wide), budget=int((plain + checkpointed) / 2)).option
    assert advised.flags[0] == "--train.gradient_checkpointing true" and "--base_dtype bf16" not in advised.flags
    advised = plan(config_of(wide), budget=int((checkpointed + both) / 2)).option
    assert {"--train.gradient_checkpointing true", "--base_dtype bf16"} <= set(advised.flags)
    assert advised.estimate.total(advised.batch_size) <= (checkpointed + both) / 2


@pytest.mark.parametrize("text, expected", [("24GB", 24e9), ("16GiB", 16 * 2**30), ("800MB", 800e6),
                                            ("1.5 gb", 1.5e9), ("512mib", 512 * 2**20)])
def test_memory_sizes(text, expected):
    assert parse_memory(text) == int(expected)


@pytest.mark.parametrize("text", ["24", "24XB", "-3GB", "GB", "lots"])  # 0GB: test_cli_refuses_bad_flags_in_one_line
def test_bad_memory_sizes_are_refused(text):
    with pytest.raises(ConfigError, match="24GB, 16GiB or 800MB"):
        parse_memory(text)


def test_cli_prints_the_parts_and_what_fits(wide):
    runner = CliRunner()
    result = runner.invoke(cli, ["plan", "wide", "--data", str(wide), "--memory", "2GB"])
    assert result.exit_code == 0, result.output
    for word in ("weights", "LoRA + optimizer", "activations", "total", "fits in 2.00 GB"):
        assert word in result.output
    result = runner.invoke(cli, ["plan", "wide", "--data", str(wide), "--train.batch_size", "8", "--json"])
    assert result.exit_code == 0, result.output
    parts = json.loads(result.stdout)["bytes"]
    assert parts["total"] == parts["weights"] + parts["lora_and_optimizer"] + parts["activations"]


@pytest.mark.parametrize("args, expected", [
    (["--memory", "24"], "--memory '24' is not a memory size"),
    (["--memory", "lots"], "write a number and a unit"),
    (["--memory", "0GB"], "--memory '0GB': the budget must be more than nothing"),  # was "not a memory size"
    (["--device", "tpu"], "'tpu' is not one of"),
])
def test_cli_refuses_bad_flags_in_one_line(wide, args, expected):
    result = CliRunner().invoke(cli, ["plan", "wide", "--data", str(wide), *args])
    assert result.exit_code != 0 and expected in result.output and "Traceback" not in result.output


def test_cli_needs_data(wide):
    result = CliRunner().invoke(cli, ["plan", "wide"])
    assert result.exit_code == 2 and "pass --data DIR" in result.output


def test_a_task_with_several_optimizers_shows_what_each_trains(toy_data, toy_host):
    # A GAN's discriminator trains fully beside the LoRA weights: the plan
    # says how much of "LoRA + optimizer" each optimizer group holds.
    result = plan(load_config("toy-pair", ["--data", str(toy_data)]))
    assert set(result.trained_groups) == {"encoder", "head"} and all(result.trained_groups.values())
    assert sum(result.trained_groups.values()) == result.trained_parameters
    printed = CliRunner().invoke(cli, ["plan", "toy-pair", "--data", str(toy_data)])
    assert printed.exit_code == 0, printed.output
    for name, count in result.trained_groups.items():
        assert f"{name} {count / 1e6:.2f} M" in printed.output


def test_a_task_with_one_optimizer_has_no_groups_to_show(wide):
    assert plan(config_of(wide)).trained_groups == {}


def test_dropout_masks_are_planned_as_the_trainer_and_a_gpu_keep_them():
    """The demo MusicGen drops out in its decoder: a CPU run keeps boolean
    masks (unless --train.bool_dropout_masks false), a GPU always does."""
    def per_example(*flags, device=None):
        config = load_config("music-demo", ["--train.batch_size", "4", *flags])
        return plan(config, device=device).estimate.activations.per_example

    torch_masks = per_example("--train.bool_dropout_masks", "false")
    assert per_example() < 0.95 * torch_masks
    assert per_example("--train.bool_dropout_masks", "false", device="cuda") == per_example(device="cuda")
