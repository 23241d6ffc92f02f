import pytest

from lorakit.config import LoraSettings, RunConfig, TrainSettings, build
from lorakit.errors import ConfigError


def test_build_coerces_strings_from_flags():
    config = build(RunConfig, {"task": "toy", "lora": {"r": "16", "dora": "true"}, "train": {"lr": "3e-4", "patience": "null"}})
    assert config.lora.r == 16 and config.lora.dora is True
    assert config.train.lr == pytest.approx(3e-4) and config.train.patience is None


def test_unknown_field_lists_the_valid_ones():
    with pytest.raises(ConfigError) as info:
        build(RunConfig, {"task": "toy", "lora": {"rank": 4}})
    message = str(info.value)
    assert "lora.rank" in message and "lora.r," in message and "lora.alpha" in message


@pytest.mark.parametrize(
    "cls, values, field",
    [
        (LoraSettings, {"r": 0}, "lora.r"),
        (LoraSettings, {"dropout": 1.5}, "lora.dropout"),
        (LoraSettings, {"targets": []}, "lora.targets"),
        (TrainSettings, {"batch_size": 0}, "train.batch_size"),
        (TrainSettings, {"precision": "fp8"}, "train.precision"),
        (TrainSettings, {"warmup_ratio": 1.0}, "train.warmup_ratio"),
    ],
)
def test_post_init_names_the_bad_field(cls, values, field):
    with pytest.raises(ConfigError, match=field):
        build(cls, values)


def test_a_misspelt_or_misplaced_field_gets_a_suggestion():
    with pytest.raises(ConfigError, match=r"unknown field train.max_step \(did you mean train.max_steps\?\)"):
        build(RunConfig, {"task": "toy", "train": {"max_step": 3}})
    with pytest.raises(ConfigError, match=r"unknown field max_steps \(did you mean train.max_steps\?\)"):
        build(RunConfig, {"task": "toy", "max_steps": 3})  # a recipe's key a level too high
    with pytest.raises(ConfigError, match=r"unknown field train.zzz; valid fields"):
        build(RunConfig, {"task": "toy", "train": {"zzz": 3}})


def test_wrong_types_are_refused():
    with pytest.raises(ConfigError, match="expected an integer"):
        build(TrainSettings, {"epochs": "three"})
    with pytest.raises(ConfigError, match="expected true or false"):
        build(LoraSettings, {"rslora": "maybe"})


@pytest.mark.parametrize("value", ["inf", ".inf", "-inf", "nan", float("inf")])
def test_a_number_that_is_not_finite_is_refused_before_training(value):
    """``--train.lr inf`` passed "must be positive" and the run died at step 2 on a nan loss."""
    with pytest.raises(ConfigError, match=r"lr = .* is invalid: expected a finite number"):
        build(TrainSettings, {"lr": value})
    with pytest.raises(ConfigError, match=r"train.max_grad_norm = .* is invalid: expected a finite number"):
        build(RunConfig, {"task": "toy", "train": {"max_grad_norm": value}})


def test_replay_needs_a_retain_set():
    with pytest.raises(ConfigError, match="data.retain"):
        build(RunConfig, {"task": "toy", "data": {"replay": 0.5}})


def test_targets_list_or_regex():
    assert build(LoraSettings, {"targets": ["query", "value"]}).targets == ["query", "value"]
    assert build(LoraSettings, {"targets": r".*\.(query|value)"}).targets == r".*\.(query|value)"
    assert build(LoraSettings, {"targets": r".*\.layers\.\d{1,2}\.q"}).targets == r".*\.layers\.\d{1,2}\.q"
    # A plain word or words are suffixes: as a regex on whole names they fitted no layer ("qkv,fc1" was refused).
    assert build(LoraSettings, {"targets": "qkv,fc1"}).targets == ["qkv", "fc1"]
    assert build(LoraSettings, {"targets": "query, value"}).targets == ["query", "value"]
    assert build(LoraSettings, {"targets": "qkv"}).targets == ["qkv"]


def test_a_plugin_option_checked_with_value_error_is_one_config_error():
    import dataclasses

    from lorakit.api import TaskOptions

    @dataclasses.dataclass
    class Options(TaskOptions):
        max_length: int = 64

        def __post_init__(self):
            if self.max_length < 1:
                raise ValueError(f"max_length must be at least 1, got {self.max_length}")

    assert build(Options, {"max_length": "8"}, "options.").max_length == 8
    with pytest.raises(ConfigError, match=r"^options: max_length must be at least 1, got 0$"):
        build(Options, {"max_length": "0"}, "options.")
