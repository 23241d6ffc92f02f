"""Task.prepare_base: a base changed to fit the data (the toy grows its head
for data with more outputs, as a classifier grows its head for new labels)
trains, saves, and is rebuilt from the options when the adapter is opened."""

import json

import pytest
import torch
from click.testing import CliRunner
from safetensors.torch import load_file

from lorakit import runs
from lorakit.cli import cli

from toy_plugin import ToyTask, write_toy_data


@pytest.fixture
def grown(toy_host, tmp_path_factory):
    """A toy run on data with three outputs per example: the head grows from 1 to 3."""
    folder = tmp_path_factory.mktemp("grown")
    data = write_toy_data(folder / "data", outputs=3)
    config = runs.load_config("toy", ["--data", str(data), "--output", str(folder / "run"), "--epochs", "4",
                                      "--lr", "0.02"])
    return runs.run(config, show_progress=False)


def test_modules_prepare_base_returns_are_trained_and_saved(grown):
    manifest = json.loads((grown.adapter_dir / "lorakit.json").read_text())
    assert manifest["modules_to_save"] == ["head"] and manifest["options"]["outputs"] == 3
    assert manifest["data"]["outputs"] == 3  # Data.summary reaches the manifest
    weights = load_file(str(grown.adapter_dir / "adapter_model.safetensors"))
    assert not any("head.lora" in k for k in weights), "a module trained fully gets no LoRA"
    head = weights["base_model.model.head.weight"]
    assert head.shape == (3, 16)
    untrained = ToyTask().load_base("demo").model
    untrained.grow_head(3)
    assert not torch.allclose(head, untrained.head.weight), "the grown head trained"
    test = grown.report["test"]
    assert test["adapter"]["mse"] < 0.5 * test["base"]["mse"]


def test_opening_the_adapter_calls_prepare_base_without_data(grown, monkeypatch):
    calls = []
    original = ToyTask.prepare_base

    def spy(self, base, data):
        calls.append(data)
        return original(self, base, data)

    monkeypatch.setattr(ToyTask, "prepare_base", spy)
    task, base, model, manifest, _ = runs.open_adapter(grown.run_dir)
    assert calls == [None]
    assert base.model.head.out_features == 3 and task.options.outputs == 3


def test_a_grown_base_round_trips_through_predict(grown):
    records = runs.predict("toy", ["0.1,0.2,0.3,0.4"], adapter=str(grown.run_dir))
    assert len(records[0]["y"]) == 3
    result = CliRunner().invoke(cli, ["predict", "toy", "--adapter", str(grown.run_dir), "0.1,0.2,0.3,0.4"])
    assert result.exit_code == 0, result.output
    assert "different base" not in result.output and "fingerprint" not in result.output
    assert json.loads(result.stdout)["y"] == pytest.approx(records[0]["y"])


def test_the_fingerprint_is_of_the_base_as_loaded(grown):
    """The fingerprint is taken before prepare_base, so it matches a fresh load."""
    from lorakit.fingerprints import fingerprint

    manifest = json.loads((grown.adapter_dir / "lorakit.json").read_text())
    assert manifest["base_fingerprint"] == fingerprint(ToyTask().load_base("demo").model)


def test_what_prepare_base_draws_from_torch_is_the_same_whatever_torch_was_seeded_with(toy_host, tmp_path,
                                                                                         monkeypatch):
    # torch seeds itself differently in every process: a task that draws from
    # the global generator while fitting the base must still train the same.
    original = ToyTask.prepare_base

    def noisy(self, base, data):
        chosen = original(self, base, data)
        with torch.no_grad():
            base.model.head.weight.add_(torch.randn_like(base.model.head.weight))
        return chosen

    monkeypatch.setattr(ToyTask, "prepare_base", noisy)
    data = write_toy_data(tmp_path / "data", outputs=3)
    config = runs.load_config("toy", ["--data", str(data), "--output", str(tmp_path / "run")])
    states = []
    for torch_seed in (1, 2):
        torch.manual_seed(torch_seed)
        made = runs.training_model(runs.make_task(config), config)
        states.append({name: value.detach().clone() for name, value in made.model.state_dict().items()})
    assert states[0].keys() == states[1].keys() and any("head" in name for name in states[0])
    assert all(torch.equal(states[0][name], states[1][name]) for name in states[0])


def test_the_targets_prepare_base_chooses_for_its_base_are_the_ones_a_run_trains(toy_host, tmp_path, monkeypatch):
    # A task may pick its targets for the base it was given (the voice task
    # does for Piper voices): the core reads lora_targets after prepare_base.
    original = ToyTask.prepare_base

    def encoder_only(self, base, data):
        self.lora_targets = ["encoder"]
        return original(self, base, data)

    monkeypatch.setattr(ToyTask, "prepare_base", encoder_only)
    data = write_toy_data(tmp_path / "data")
    config = runs.load_config("toy", ["--data", str(data), "--output", str(tmp_path / "run")])
    made = runs.training_model(runs.make_task(config), config)
    trained = [name for name, p in made.model.named_parameters() if p.requires_grad]
    assert made.targets == ["encoder"]
    assert trained and all(".encoder." in name and "lora_" in name for name in trained), trained
