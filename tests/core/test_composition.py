"""Adapters composed at weights: `lorakit predict --adapter A:w --adapter B:w`
equals the weighted merge, and the composition report of `lorakit evaluate
--adapter ...` equals evaluating each variant on its own."""

import json
import shutil

import pytest
import torch

import toy_plugin
from cli_failure import fails_cleanly
from lorakit import runs
from lorakit.apply import load_base, open_with_adapters, read_adapters
from lorakit.composition import composition_report, open_composition
from lorakit.config import RunConfig
from lorakit.errors import AdapterError
from lorakit.merge import merge_weighted
from lorakit.plugins import get_host

POINTS = ["0.1,0.2,0.3,0.4", "-1,0.5,2,0", "1,1,1,1"]


@pytest.fixture(scope="module")
def two(tmp_path_factory):
    """Two toy runs on the demo base, from different data and seeds."""
    get_host().add_plugin(toy_plugin, "toy-tests")
    root = tmp_path_factory.mktemp("composition")
    folders = []
    for name, seed in (("a", 0), ("b", 1)):
        data = toy_plugin.write_toy_data(root / f"data-{name}", n=120, seed=seed)
        config = runs.load_config("toy", ["--data", str(data), "--output", str(root / name), "--epochs", "2",
                                          "--lr", "0.02", "--train.seed", str(seed)])
        folders.append(runs.run(config, show_progress=False, evaluate=False).run_dir)
    return folders


def ys(records):
    return torch.tensor([r["y"] for r in records])


def changed_copy(adapter_dir, folder, **manifest_changes):
    """A copy of an adapter folder whose lorakit.json says other things."""
    shutil.copytree(adapter_dir, folder)
    manifest = json.loads((folder / "lorakit.json").read_text())
    (folder / "lorakit.json").write_text(json.dumps({**manifest, **manifest_changes}))
    return folder


def test_predict_weights_one_and_zero_and_a_mix(two):
    a, b = two
    plain = ys(runs.predict("toy", POINTS, str(a)))
    base = ys(runs.predict("toy", POINTS))
    assert (plain - base).abs().max() > 1e-2  # the adapter changes the outputs
    assert torch.allclose(ys(runs.predict("toy", POINTS, [(a, 1.0)])), plain, atol=1e-6)
    assert torch.allclose(ys(runs.predict("toy", POINTS, [(str(a), 0.0)])), base, atol=1e-6)
    merged = merge_weighted(toy_plugin.ToyModel(0), [(a / "adapter", 0.7), (b / "adapter", 0.5)])
    with torch.no_grad():
        expected = merged(torch.tensor([[float(v) for v in p.split(",")] for p in POINTS]))
    assert torch.allclose(ys(runs.predict("toy", POINTS, [(a, 0.7), (b, 0.5)])), expected, atol=1e-6)


def is_rounded(records) -> bool:
    return all(r["y"] == round(r["y"], 2) for r in records)


def test_several_adapters_take_the_first_ones_options_unless_given(two, tmp_path):
    a, b = two
    manifest = json.loads((a / "adapter" / "lorakit.json").read_text())
    rounding = changed_copy(a / "adapter", tmp_path / "rounding",
                            options={**manifest["options"], "rounded": True})
    assert not is_rounded(runs.predict("toy", POINTS, [(a, 0.7), (b, 0.5)]))
    assert is_rounded(runs.predict("toy", POINTS, [(rounding, 0.7), (b, 0.5)]))  # the first one's
    assert not is_rounded(runs.predict("toy", POINTS, [(b, 0.5), (rounding, 0.7)]))  # not a later one's
    assert not is_rounded(runs.predict("toy", POINTS, [(rounding, 0.7), (b, 0.5)], options={"rounded": False}))
    assert is_rounded(runs.predict("toy", POINTS, [(a, 0.7), (b, 0.5)], options={"rounded": True}))


def test_options_the_adapters_disagree_on_are_named_with_the_one_used(two, tmp_path, capsys):
    a, b = two
    manifest = json.loads((a / "adapter" / "lorakit.json").read_text())
    rounding = changed_copy(a / "adapter", tmp_path / "rounding",
                            options={**manifest["options"], "rounded": True})
    capsys.readouterr()
    runs.predict("toy", POINTS, [(b, 0.5), (rounding, 0.7)])
    said = " ".join(capsys.readouterr().err.split())
    assert f"differ in option rounded ({b} False, {rounding} True); predicting with the first's, False" in said
    assert "--rounded VALUE" in said
    runs.predict("toy", POINTS, [(a, 0.5), (b, 0.7)])  # same options: nothing said
    runs.predict("toy", POINTS, [(b, 0.5), (rounding, 0.7)], options={"rounded": True})  # chosen: nothing said
    assert "differ" not in capsys.readouterr().err


def test_the_unmerged_variants_equal_the_merged_models_on_the_probe(two):
    a, b = two
    specs = read_adapters([(a, 0.7), (b, 0.5)])
    composition = open_composition(specs)
    task = composition.tasks[0]

    def merged(chosen):
        adapted = open_with_adapters(runs.make_task(RunConfig(task="toy")), chosen)
        return task.probe(adapted.base, adapted.model)

    with torch.inference_mode():
        with composition.variant(composition.weights()) as model:
            combined = task.probe(composition.base, model)
        with composition.variant(composition.weights(0)) as model:
            alone = task.probe(composition.base, model)
        with composition.variant({}) as model:
            base = task.probe(composition.base, model)
        assert torch.allclose(combined, merged(specs), atol=1e-4)
        assert torch.allclose(alone, merged(specs[:1]), atol=1e-4)
        plain = load_base(task, "demo")
        assert torch.equal(base, task.probe(plain, plain.model))
        with composition.variant(composition.weights(0)) as model:  # scalings and active set were put back
            assert torch.equal(task.probe(composition.base, model), alone)


def test_report_alone_equals_evaluate_and_combined_equals_a_weighted_merge(two):
    a, b = two
    report = composition_report([(str(a), 1.0), (str(b), 0.5)])
    assert [entry["adapter"] for entry in report["adapters"]] == [str(a), str(b)]
    first = report["adapters"][0]["splits"]["test"]
    evaluated = runs.evaluate_run(a)["test"]
    assert first["examples"] == evaluated["examples"]
    assert first["base"]["mse"] == pytest.approx(evaluated["base"]["mse"], abs=1e-6)
    assert first["alone"]["mse"] == pytest.approx(evaluated["adapter"]["mse"], abs=1e-6)
    # Each adapter's own held-out examples, with a weighted merge made directly.
    task = runs.make_task(RunConfig(task="toy"))
    base = load_base(task, "demo")
    for run_dir, entry in zip(two, report["adapters"]):
        examples = runs.held_out(task, base, run_dir).test
        mix = merge_weighted(toy_plugin.ToyModel(0), [(a / "adapter", 1.0), (b / "adapter", 0.5)])
        alone = merge_weighted(toy_plugin.ToyModel(0), [(run_dir / "adapter", entry["weight"])])
        scores = entry["splits"]["test"]
        with torch.inference_mode():
            assert scores["combined"]["mse"] == pytest.approx(task.evaluate(base, mix, examples)["mse"], abs=1e-5)
            assert scores["alone"]["mse"] == pytest.approx(task.evaluate(base, alone, examples)["mse"], abs=1e-5)
        assert scores["change"]["mse"] == pytest.approx(scores["combined"]["mse"] - scores["alone"]["mse"])


def test_the_report_gives_the_direction_of_every_metric_optional_ones_too(two):
    report = composition_report([(str(two[0]), 1.0), (str(two[1]), 0.5)])
    assert report["metrics"] == {"mse": "min", "mae": "min"}  # mae: the toy's, with --report_mae


def test_a_lone_adapter_folder_needs_data(two, tmp_path):
    a, b = two
    lone = shutil.copytree(a / "adapter", tmp_path / "lone")
    fails_cleanly("evaluate", "--adapter", lone, "--adapter", f"{b}:0.5", names=(str(lone), "config.yaml", "--data"))
    data = toy_plugin.write_toy_data(tmp_path / "more", n=30, seed=9)
    report = composition_report([(lone, 1.0), (b, 0.5)], data=str(data))
    assert [entry["splits"]["test"]["examples"] for entry in report["adapters"]] == [30, 30]


def test_adapters_of_other_tasks_or_bases_are_refused_naming_both(two, tmp_path):
    a, b = two
    pair = changed_copy(b / "adapter", tmp_path / "pair", task="toy-pair")
    fails_cleanly("evaluate", "--adapter", a, "--adapter", pair, names=(str(a), str(pair), "'toy-pair'", "'toy'"))
    other = changed_copy(b / "adapter", tmp_path / "other", base="demo-other", base_fingerprint="0" * 16)
    fails_cleanly("evaluate", "--adapter", a, "--adapter", other, names=(str(a), str(other), "'demo-other'"))
    with pytest.raises(AdapterError, match="not a 'toy' one"):
        runs.predict("toy", POINTS, [(a, 1.0), (pair, 1.0)])
    with pytest.raises(AdapterError, match="combine only on the base they share"):
        runs.predict("toy", POINTS, [(a, 1.0), (other, 1.0)])


def test_one_adapter_given_twice_is_refused_as_serving_refuses_it(two):
    """It was accepted, and the composition report listed it twice."""
    a, _ = two
    fails_cleanly("evaluate", "--adapter", f"{a}:0.5", "--adapter", f"{a / 'adapter'}:0.5",
                  names=(str(a / "adapter"), "is given twice"))
    with pytest.raises(AdapterError, match="is given twice"):
        runs.predict("toy", POINTS, [(a, 0.5), (a, 0.5)])


def test_an_adapter_training_whole_modules_is_not_mixed(two, tmp_path):
    a, b = two
    whole = changed_copy(b / "adapter", tmp_path / "whole", modules_to_save=["head"])
    for call in (lambda: composition_report([(a, 1.0), (whole, 1.0)]),
                 lambda: runs.predict("toy", POINTS, [(a, 1.0), (whole, 0.5)])):
        with pytest.raises(AdapterError, match="modules_to_save"):
            call()
