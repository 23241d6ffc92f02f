"""Recipes: data for a run, shipped by plugins, layered over the task's own
recipe, with data paths relative to the recipe file."""

from pathlib import Path

import pytest
import yaml

from lorakit import runs
from lorakit.config import SWITCHED_ON, coerce
from lorakit.errors import ConfigError
from lorakit.plugins import PluginHost
from lorakit.recipes import find_recipe, list_recipes, parse_flags, resolve_key
from lorakit.runs import load_config, make_task

from toy_plugin import write_toy_data


def _recipe(path: Path, values: dict) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"# lorakit run {path.stem}\n" + yaml.safe_dump(values))
    return path


def test_every_recipe_of_every_installed_plugin_loads():
    host = PluginHost()
    assert host.recipe_files, "the installed plugins ship recipes"
    for path in host.recipe_files:
        first = path.read_text().splitlines()[0]
        assert first.startswith("# lorakit "), f"{path} must open with the command that runs it"
        config = runs.load_config(str(path), [])
        runs.make_task(config)  # the task exists and its options are valid
        for field in ("path", "eval_path", "retain"):
            value = getattr(config.data, field)
            assert value is None or Path(value).exists(), f"{path}: data.{field} {value} does not exist"
        task_class = host.task(config.task)
        data_flags = ["--data", *(f"--{a}" for a, t in getattr(task_class, "aliases", {}).items() if t == "data.path")]
        assert config.data.path or any(flag in first.split() for flag in data_flags), (
            f"{path.name} names its data (data.path, or {' / '.join(data_flags)} in its command)")


def test_every_installed_task_ships_its_own_recipe():
    host = PluginHost()
    names = {path.stem for path in host.recipe_files}
    missing = sorted(set(host.tasks) - names)
    assert not missing, f"tasks without a recipe of their own (their recommended settings): {missing}"


def test_flags_resolve_sections_short_names_and_task_options(toy_host):
    assert resolve_key("lora.r", []) == ["lora", "r"]
    assert resolve_key("epochs", []) == ["train", "epochs"]
    assert resolve_key("retain", []) == ["data", "retain"]
    assert resolve_key("data", []) == ["data", "path"]
    assert resolve_key("rounded", ["rounded"]) == ["options", "rounded"]
    config = runs.load_config("toy", ["--data", "d", "--lora.r", "4", "--epochs=2", "--rounded", "--precision", "no"])
    assert (config.data.path, config.lora.r, config.train.epochs) == ("d", 4, 2)
    assert config.options == {"rounded": True} and config.train.precision == "no"
    assert runs.load_config("toy", ["--options.rounded", "true"]).options == {"rounded": True}


def test_a_task_option_named_as_a_core_field_is_written_in_full():
    """voice-clone and music-style have options.seed (synthesis) beside
    train.seed: --seed set the training's silently; now it asks which."""
    with pytest.raises(ConfigError, match=r"^--seed is ambiguous: write one of --train.seed, --options.seed$"):
        resolve_key("seed", ["seed", "slot"])
    assert resolve_key("train.seed", ["seed"]) == ["train", "seed"]
    assert resolve_key("options.seed", ["seed"]) == ["options", "seed"]
    assert resolve_key("seed", []) == ["train", "seed"]
    config = runs.load_config("voice-clone", ["--speaker", "clips", "--options.seed", "3", "--train.seed", "5"])
    assert config.options["seed"] == 3 and config.train.seed == 5


def test_task_aliases_set_their_config_field(toy_host):
    assert runs.load_config("toy", ["--points", "somewhere"]).data.path == "somewhere"


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
    recipe = _recipe(tmp_path / "toy-small.yaml", {"task": "toy", "data": "x", "lora": {"r": 2}})
    config = runs.load_config(str(recipe), ["--lora.r", "6"])
    assert config.task == "toy" and config.data.path == str(tmp_path / "x") and config.lora.r == 6


def test_recipe_data_paths_are_relative_to_the_recipe_file(tmp_path, toy_host, monkeypatch):
    """A recipe in its own folder runs from any working directory."""
    write_toy_data(tmp_path / "data", n=60)
    write_toy_data(tmp_path / "old", n=20, seed=3)
    recipe = _recipe(tmp_path / "recipes" / "toy-here.yaml", {
        "task": "toy", "data": {"path": "../data", "retain": "../old", "eval_path": str(tmp_path / "data")},
        "train": {"epochs": 1}})
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    config = runs.load_config(str(recipe), ["--output", str(tmp_path / "run")])
    assert config.data.path == str(tmp_path / "data") and config.data.retain == str(tmp_path / "old")
    assert config.data.eval_path == str(tmp_path / "data")  # absolute paths stay as they are
    outcome = runs.run(config, show_progress=False)
    assert outcome.report["retain"]["examples"] == 20
    # A path given as a flag is the user's, relative to where they stand.
    assert runs.load_config(str(recipe), ["--data", "mine"]).data.path == "mine"


def test_a_tasks_own_recipe_is_the_defaults_layer(tmp_path, toy_host, monkeypatch):
    """dataclass defaults < the task's recipe (toy.yaml) < a named recipe < flags."""
    own = _recipe(tmp_path / "plugin" / "toy.yaml", {
        "task": "toy", "train": {"epochs": 7, "lr": 0.05}, "lora": {"r": 4}, "options": {"nan_at_call": 50}})
    named = _recipe(tmp_path / "plugin" / "toy-short.yaml", {"task": "toy", "data": "d", "train": {"epochs": 3}})
    monkeypatch.setattr(toy_host, "recipe_files", [*toy_host.recipe_files, own, named])
    assert find_recipe("toy") == own

    config = runs.load_config("toy", [])
    assert (config.train.epochs, config.train.lr, config.lora.r, config.options) == (7, 0.05, 4, {"nan_at_call": 50})
    assert config.train.batch_size == 16 and config.lora.alpha == 16.0  # the dataclasses below it
    config = runs.load_config("toy", ["--epochs", "2", "--nan_at_call", "9"])
    assert (config.train.epochs, config.train.lr, config.options) == (2, 0.05, {"nan_at_call": 9})

    for target in ("toy-short", str(named)):
        config = runs.load_config(target, [])
        assert (config.train.epochs, config.train.lr, config.lora.r) == (3, 0.05, 4)
        assert config.data.path == str(tmp_path / "plugin" / "d")
        config = runs.load_config(target, ["--lr", "0.01", "--lora.r", "2"])
        assert (config.train.epochs, config.train.lr, config.lora.r) == (3, 0.01, 2)
    # Flags never leak into the recipes for the next run.
    assert runs.load_config("toy", []).train.epochs == 7


def test_the_defaults_layer_belongs_to_the_recipes_task(tmp_path, toy_host, monkeypatch):
    own = _recipe(tmp_path / "plugin" / "toy.yaml", {"task": "toy", "train": {"epochs": 7}})
    pair = _recipe(tmp_path / "plugin" / "pair-short.yaml", {"task": "toy-pair", "data": "d"})
    monkeypatch.setattr(toy_host, "recipe_files", [*toy_host.recipe_files, own, pair])
    assert runs.load_config("pair-short", []).train.epochs == 10  # toy.yaml is not toy-pair's
    assert runs.load_config("toy-pair", []).train.epochs == 10


def test_values_are_yaml():
    assert parse_flags(["--lora.targets", "[query, value]", "--dora", "--train.lr", "0.001"]) == [
        ("lora.targets", ["query", "value"]), ("dora", SWITCHED_ON), ("train.lr", 0.001)]
    assert parse_flags(["--question", "note: what is broken?", "--precision", "no"]) == [
        ("question", "note: what is broken?"), ("precision", "no")]


def test_a_flag_without_a_value_switches_on_a_true_false_setting_and_is_refused_elsewhere():
    """``--output`` forgotten at the end of a command trained into a folder named True."""
    assert load_config("caption-demo", ["--dora"]).lora.dora is True
    assert load_config("caption-demo", ["--lora.dora", "--train.max_steps", "3"]).lora.dora is True
    for flag in ("--output", "--data", "--train.max_steps", "--lora.r", "--trigger", "--task", "--base"):
        with pytest.raises(ConfigError, match=f"^{flag} was given without a value: write {flag} VALUE$"):
            load_config("caption-demo", ["--lora.dora", flag])


def test_an_empty_flag_is_empty_text_and_unsets_an_optional_setting():
    # Not "None": --trigger "" would have started every training caption with the word None.
    assert parse_flags(["--trigger", "", "--slot", " "]) == [("trigger", ""), ("slot", "")]
    config = load_config("caption-demo", ["--trigger", "", "--clip", "", "--retain", "", "--replay", "0",
                                          "--train.max_steps", "", "--lora.targets", ""])
    task = make_task(config)
    assert (task.options.trigger, task.options.clip) == ("", "")
    assert config.data.retain is None and config.train.max_steps is None and config.lora.targets is None
    assert coerce(None, str, "trigger") == ""  # a blank YAML value (trigger:) in a recipe


def test_listed_recipes_name_their_task_and_command(toy_host, tmp_path, monkeypatch):
    recipe = _recipe(tmp_path / "recipes" / "mine.yaml", {"task": "toy", "data": "d"})
    monkeypatch.chdir(tmp_path)
    listed = {r.name: r for r in list_recipes()}
    assert listed["mine"].path.resolve() == recipe.resolve()
    assert listed["mine"].task == "toy" and listed["mine"].command == "lorakit run mine"


def test_an_unknown_flag_lists_the_task_s_own_flags_too(toy_host):
    with pytest.raises(ConfigError) as error:
        runs.load_config("toy", ["--colour", "red"])
    message = str(error.value)
    assert message.startswith("unknown option --colour; valid options:")
    assert "--points" in message and "--train.lr" in message
    for typed, meant in (("nan_at_cal", "nan_at_call"), ("bach_size", "batch_size")):
        with pytest.raises(ConfigError, match=rf"unknown option --{typed} \(did you mean --{meant}\?\); valid"):
            runs.load_config("toy", [f"--{typed}", "1"])


def test_a_flag_that_cannot_take_effect_names_the_setting_that_wins(tmp_path, toy_host, monkeypatch, capsys):
    """A task recipe that sets max_steps makes --epochs meaningless: the user
    is told so, with the way out; an explicit --max_steps stays silent."""
    own = _recipe(tmp_path / "plugin" / "toy.yaml", {"task": "toy", "train": {"max_steps": 40}})
    monkeypatch.setattr(toy_host, "recipe_files", [*toy_host.recipe_files, own])
    config = runs.load_config("toy", ["--epochs", "50"])
    assert (config.train.epochs, config.train.max_steps) == (50, 40)
    said = " ".join(capsys.readouterr().err.split())
    assert "--train.epochs 50 has no effect: train.max_steps 40 (from the toy recipe)" in said
    assert "--train.max_steps none" in said

    config = runs.load_config("toy", ["--epochs", "50", "--train.max_steps", "none"])
    assert (config.train.epochs, config.train.max_steps) == (50, None)
    config = runs.load_config("toy", ["--epochs", "51", "--max_steps", "80"])
    assert "has no effect" not in capsys.readouterr().err
