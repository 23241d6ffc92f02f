from pathlib import Path
import pytest
import yaml

from lorakit import runs
from lorakit.errors import ConfigError
from lorakit.recipes import list_recipes, parse_flags, resolve_key

REPO = Path(__file__).resolve().parents[2]



def test_every_recipe_loads_and_names_its_command():
    recipes = list_recipes()
    shipped = sorted((REPO / "recipes").glob("*.yaml"))
    assert shipped, "the repo ships recipes"
    assert {r.path.resolve() for r in recipes} >= {p.resolve() for p in shipped}
    for path in shipped:
        first = path.read_text().splitlines()[0]
        assert first.startswith("# lorakit "), f"{path.name} must open with the command that runs it"
        config = runs.load_config(str(path), [])
        runs.make_task(config)  # the task exists and its options are valid
        assert config.data.path, f"{path.name} names its data"


def test_flags_resolve_sections_short_names_and_task_options(toy_host):
    assert resolve_key("lora.r", []) == ["lora", "r"]
    assert resolve_key("epochs", []) == ["train", "epochs"]
    assert resolve_key("retain", []) == ["data", "retain"]
    assert resolve_key("data", []) == ["data", "path"]
    assert resolve_key("two_optimizers", ["two_optimizers"]) == ["options", "two_optimizers"]
    config = runs.load_config("toy", ["--data", "d", "--lora.r", "4", "--epochs=2", "--two-optimizers", "--precision", "no"])
    assert (config.data.path, config.lora.r, config.train.epochs) == ("d", 4, 2)
    assert config.options == {"two_optimizers": True} and config.train.precision == "no"


def test_unknown_flag_lists_valid_options(toy_host):
    with pytest.raises(ConfigError) as info:
        runs.load_config("toy", ["--lora.rank", "4"])
    assert "lora.rank" in str(info.value) and "lora.r" in str(info.value)
    with pytest.raises(ConfigError) as info:
        runs.load_config("toy", ["--colour", "red"])
    assert "--colour" in str(info.value) and "--lora.r" in str(info.value) and "--nan_at_call" in str(info.value)


def test_bad_task_option_is_named(toy_host):
    config = runs.load_config("toy", ["--nan_at_call", "0"])
    with pytest.raises(ConfigError, match="nan_at_call"):
        runs.make_task(config)


def test_recipe_file_with_overrides(tmp_path, toy_host):
    recipe = tmp_path / "toy-small.yaml"
    recipe.write_text("# lorakit run toy-small.yaml\n" + yaml.safe_dump({"task": "toy", "data": "x", "lora": {"r": 2}}))
    config = runs.load_config(str(recipe), ["--lora.r", "6"])
    assert config.task == "toy" and config.data.path == "x" and config.lora.r == 6


def test_values_are_yaml():
    assert parse_flags(["--lora.targets", "[query, value]", "--dora", "--train.lr", "0.001"]) == [
        ("lora.targets", ["query", "value"]), ("dora", True), ("train.lr", 0.001)]
    assert parse_flags(["--question", "note: what is broken?", "--precision", "no"]) == [
        ("question", "note: what is broken?"), ("precision", "no")]


def test_flags_never_change_a_tasks_defaults(toy_host, monkeypatch):
    from toy_plugin import ToyTask

    monkeypatch.setattr(ToyTask, "defaults", {"train": {"epochs": 7}})
    assert runs.load_config("toy", ["--train.max_steps", "4"]).train.max_steps == 4
    assert ToyTask.defaults == {"train": {"epochs": 7}}
    config = runs.load_config("toy", [])
    assert config.train.max_steps is None and config.train.epochs == 7
