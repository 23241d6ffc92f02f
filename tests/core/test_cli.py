import json
import shutil

import pytest
from click.testing import CliRunner

from lorakit.cli import cli


@pytest.fixture
def runner(toy_host):
    return CliRunner()


def test_tasks_plugins_recipes(runner):
    result = runner.invoke(cli, ["tasks"])
    assert result.exit_code == 0 and "caption" in result.output and "toy" in result.output
    result = runner.invoke(cli, ["plugins"])
    assert result.exit_code == 0 and "register_tasks" in result.output
    result = runner.invoke(cli, ["recipes"])
    assert result.exit_code == 0 and "lorakit run" in result.output


def test_run_predict_evaluate_export(runner, toy_data, tmp_path):
    run_dir = tmp_path / "run"
    result = runner.invoke(cli, ["run", "toy", "--data", str(toy_data), "--output", str(run_dir), "--epochs", "3", "--quiet"])
    assert result.exit_code == 0, result.output
    assert "base vs adapter" in result.output and "mse" in result.output and str(run_dir / "adapter") in result.output
    assert "LoRA r=8 on ['encoder', 'head']: 2 layers (encoder 1, head 1)," in result.output

    result = runner.invoke(cli, ["predict", "toy", "--adapter", str(run_dir), "0.1,0.2,0.3,0.4"])
    assert result.exit_code == 0, result.output
    assert set(json.loads(result.output.splitlines()[0])) == {"input", "y"}

    result = runner.invoke(cli, ["evaluate", str(run_dir), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["test"]["adapter"]["mse"] < report["test"]["base"]["mse"]

    result = runner.invoke(cli, ["export", str(run_dir), "--merged", str(tmp_path / "merged")])
    assert result.exit_code == 0 and (tmp_path / "merged" / "model.safetensors").is_file()
    result = runner.invoke(cli, ["export", str(run_dir), "--merged", str(tmp_path / "merged")])
    assert result.exit_code != 0 and "already exists" in result.output


@pytest.mark.parametrize(
    "args, expected",
    [
        (["run", "toy", "--data", "/nonexistent/folder"], "/nonexistent/folder"),
        (["run", "toy", "--lora.rank", "4"], "valid fields"),
        (["run", "toy", "--colour", "red"], "unknown option --colour"),
        (["run", "no-such-task"], "unknown task or recipe 'no-such-task'; tasks: "),
        (["run", "mytask"], "a plugin's task is found through its package's `lorakit` entry point (`lorakit plugins`"),
        (["run", "toy-piar"], "unknown task or recipe 'toy-piar' (did you mean toy-pair?)"),
        (["run", "old-run"], "old-run is a run folder, not a task or recipe; pass old-run/config.yaml"),
        (["run", "toy"], "--data DIR"),
        (["predict", "toy", "--adapter", "/nonexistent", "1,2,3,4"], "not an adapter"),
    ],
)
def test_user_mistakes_give_one_clear_line_and_leave_nothing(runner, tmp_path, monkeypatch, args, expected):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "old-run").mkdir()
    (tmp_path / "old-run" / "config.yaml").write_text("task: toy\n")
    result = runner.invoke(cli, args)
    assert result.exit_code != 0
    assert "Traceback" not in result.output
    errors = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and expected in errors[0], result.output
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize(
    "args, expected",
    [
        (["serve", "runs", "--queue-size", "0"],
         "Invalid value for '--queue-size': 0 is not in the range 1<=x<=10000. (lorakit serve --help)"),
        (["nosuch"], "No such command 'nosuch'. (lorakit --help)"),
        (["predict", "toy", "1,2,3,4", "--adapter"], "Option '--adapter' requires an argument."),
    ],
)
def test_mistakes_the_command_line_parser_finds_are_one_error_line_too(runner, args, expected):
    """They were click's four lines: Usage, a Try hint, a blank line, and a capital Error."""
    result = runner.invoke(cli, args, prog_name="lorakit")
    assert result.exit_code == 2 and result.output.splitlines() == [f"error: {expected}"], result.output


def test_a_sentence_given_where_a_path_goes_is_one_error_line(runner):
    """`lorakit predict caption --text "<a long caption>"` was an OSError traceback: File name too long."""
    sentence = "a red box on a shelf " * 20
    result = runner.invoke(cli, ["report", sentence])
    assert result.exit_code == 1 and result.output.splitlines() == [
        f"error: {sentence[:60]}...: too long for a file or folder name (420 bytes; a name takes at most 255)"]


def test_existing_run_folder_is_refused(runner, toy_data, tmp_path):
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "config.yaml").write_text("task: toy\n")
    result = runner.invoke(cli, ["run", "toy", "--data", str(toy_data), "--output", str(tmp_path / "taken")])
    assert result.exit_code != 0 and "--resume" in result.output


def test_train_exports_the_adapter_without_the_comparison(runner, toy_data, tmp_path):
    run_dir = tmp_path / "trained"
    result = runner.invoke(cli, ["train", "toy", "--data", str(toy_data), "--output", str(run_dir), "--epochs", "2", "--quiet"])
    assert result.exit_code == 0, result.output
    assert "base vs adapter" not in result.output
    assert (run_dir / "adapter" / "adapter_model.safetensors").is_file()
    assert json.loads((run_dir / "report.json").read_text()) == {}


def test_predict_and_evaluate_compose_adapters_at_weights(runner, toy_data, tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    for run_dir, seed in ((a, "0"), (b, "1")):
        result = runner.invoke(cli, ["train", "toy", "--data", str(toy_data), "--output", str(run_dir), "--epochs", "2",
                                     "--train.seed", seed, "--quiet"])
        assert result.exit_code == 0, result.output

    def predicted(*adapters):
        flags = [token for adapter in adapters for token in ("--adapter", adapter)]
        result = runner.invoke(cli, ["predict", "toy", *flags, "0.1,0.2,0.3,0.4"])
        assert result.exit_code == 0, result.output
        return json.loads(result.output.splitlines()[0])["y"]

    assert predicted(f"{a}:1") == pytest.approx(predicted(str(a)), abs=1e-6)
    assert predicted(f"{a}:0") == pytest.approx(predicted(), abs=1e-6)
    assert predicted(f"{a}:0.7", f"{b}:0.5") != pytest.approx(predicted(str(a)), abs=1e-4)

    result = runner.invoke(cli, ["evaluate", "--adapter", str(a), "--adapter", f"{b}:0.5", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    evaluated = json.loads(runner.invoke(cli, ["evaluate", str(a), "--json"]).output)
    assert report["adapters"][0]["splits"]["test"]["alone"] == pytest.approx(evaluated["test"]["adapter"], abs=1e-6)
    assert [entry["weight"] for entry in report["adapters"]] == [1.0, 0.5]
    result = runner.invoke(cli, ["evaluate", "--adapter", str(a), "--adapter", f"{b}:0.5"])
    assert result.exit_code == 0 and "combined" in result.output and "each adapter by itself" in result.output
    result = runner.invoke(cli, ["evaluate", str(a), "--adapter", str(b)])
    assert result.exit_code != 0 and "not both" in result.output
    result = runner.invoke(cli, ["evaluate"])
    assert result.exit_code != 0 and "--adapter RUN[:WEIGHT]" in result.output


def test_predict_input_flags_become_inputs(runner):
    result = runner.invoke(cli, ["predict", "toy", "--point", "0.1,0.2,0.3,0.4", "--point", "1,1,1,1"])
    assert result.exit_code == 0, result.output
    assert [json.loads(line)["input"] for line in result.stdout.splitlines()] == ["0.1,0.2,0.3,0.4", "1,1,1,1"]
    result = runner.invoke(cli, ["predict", "toy"])
    assert result.exit_code != 0 and "nothing to predict" in result.output


def test_predict_out_says_how_many_were_written(runner, tmp_path):
    for points, said in ((["1,1,1,1"], "1 prediction written to"), (["1,1,1,1", "0,0,0,0"], "2 predictions written to")):
        out = tmp_path / f"{len(points)}.jsonl"
        result = runner.invoke(cli, ["predict", "toy", *points, "--out", str(out)])
        assert result.exit_code == 0 and result.output == f"{said} {out}\n", result.output
        assert len(out.read_text().splitlines()) == len(points)


def test_predict_takes_options_before_inputs_and_as_options_dot_name(runner):
    """`lorakit predict TASK --option value INPUT` and `--options.NAME`: the
    option takes its value, the input stays an input; a switch takes none."""
    for args in (["--outputs", "2", "0.1,0.2,0.3,0.4"], ["--options.outputs", "2", "0.1,0.2,0.3,0.4"],
                 ["0.1,0.2,0.3,0.4", "--outputs=2"]):
        result = runner.invoke(cli, ["predict", "toy", *args])
        assert result.exit_code == 0, result.output
        record = json.loads(result.stdout)
        assert record["input"] == "0.1,0.2,0.3,0.4" and len(record["y"]) == 2
    result = runner.invoke(cli, ["predict", "toy", "--rounded", "0.1,0.2,0.3,0.4", "--options.rounded"])
    assert result.exit_code == 0, result.output
    record = json.loads(result.stdout)
    assert record["input"] == "0.1,0.2,0.3,0.4" and record["y"] == round(record["y"], 2)


def test_a_flag_left_without_its_value_is_refused_and_nothing_is_written(runner, tmp_path, monkeypatch):
    from toy_plugin import write_toy_data

    data = write_toy_data(tmp_path / "data", n=40)
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(cli, ["run", "toy", "--data", str(data), "--train.max_steps", "1", "--output"])
    assert result.exit_code != 0 and "error: --output was given without a value" in result.output
    assert [p.name for p in tmp_path.iterdir()] == ["data"]  # no run folder, no folder named "True"
    result = runner.invoke(cli, ["predict", "toy", "0.1,0.2,0.3,0.4", "--outputs"])
    assert result.exit_code != 0 and "error: --outputs was given without a value" in result.output


@pytest.mark.parametrize("weight", ["nan", "inf", "-inf"])
def test_an_adapter_weight_that_is_not_finite_is_refused(runner, weight):
    """At nan the merged model captioned every image with nothing, and exited 0."""
    for command in (["predict", "toy", "1,2,3,4"], ["evaluate"]):
        result = runner.invoke(cli, [*command, "--adapter", f"runs/a:{weight}", "--adapter", "runs/b:0.5"])
        assert result.exit_code != 0, result.output
        assert f"error: --adapter runs/a:{weight}: the weight {weight} is not a finite number" in result.output


def test_predict_refuses_run_settings(runner):
    result = runner.invoke(cli, ["predict", "toy", "--train.lr", "0.1", "1,2,3,4"])
    assert result.exit_code != 0 and "not run settings" in result.output


def test_predict_names_an_unknown_flag_with_the_inputs_and_options_it_takes(runner):
    result = runner.invoke(cli, ["predict", "toy", "--points", "1,2,3,4"])
    assert result.exit_code != 0 and "Traceback" not in result.output
    assert ("lorakit predict toy takes no --points: its inputs are points as comma-separated numbers (1,2,3,4) "
            "or --point; its options: --nan_at_call,") in result.output
    assert "--outputs" in result.output and "unknown field" not in result.output


def test_predict_without_inputs_says_what_this_task_takes(runner):
    result = runner.invoke(cli, ["predict", "toy"])
    assert result.exit_code != 0
    assert "nothing to predict: give points as comma-separated numbers (1,2,3,4) or --point" in result.output


def test_a_task_answering_fewer_records_than_inputs_writes_nothing(runner, toy_host, tmp_path, monkeypatch):
    from toy_plugin import ToyTask

    predict = ToyTask.predict
    monkeypatch.setattr(ToyTask, "predict", lambda self, base, model, inputs: predict(self, base, model, inputs)[1:])
    result = runner.invoke(cli, ["predict", "toy", "1,2,3,4", "4,3,2,1", "--out", str(tmp_path / "p.jsonl")])
    assert result.exit_code != 0 and not (tmp_path / "p.jsonl").exists()
    assert "error: task 'toy': predict returned 1 records for 2 inputs; return one per input, in order" in result.output


def test_error_messages_keep_square_brackets(runner, toy_host, toy_data, tmp_path):
    """Messages are printed as text, not rich markup: "[a, b]" stays."""
    from toy_plugin import ToyTask

    class Picky(ToyTask):
        name = "toy-picky"

        def load_base(self, name):
            from lorakit.api import BaseModelError

            raise BaseModelError("this base knows the labels [a, b] and [bold]nothing else[/bold]")

    toy_host.add_task(Picky)
    try:
        result = runner.invoke(cli, ["predict", "toy-picky", "1,2,3,4"])
    finally:
        del toy_host.tasks["toy-picky"]
    assert result.exit_code != 0
    assert "labels [a, b] and [bold]nothing else[/bold]" in result.output

    # The core's own messages too: the targets as given, in a list.
    result = runner.invoke(cli, ["run", "toy", "--data", str(toy_data), "--output", str(tmp_path / "r"),
                                 "--lora.targets", "[nowhere]"])
    assert result.exit_code != 0
    assert "LoRA targets ['nowhere'] do not fit this base" in result.output and "end in: encoder, head." in result.output
    # A module to train fully that the base lacks: peft skipped it, and the run trained without it.
    result = runner.invoke(cli, ["run", "toy", "--data", str(toy_data), "--output", str(tmp_path / "r"),
                                 "--lora.targets", "[encoder]", "--lora.modules_to_save", "[haed]"])
    assert result.exit_code != 0 and not (tmp_path / "r").exists()
    assert "modules_to_save 'haed' (did you mean head?): no module of this base ends in that name" in result.output


def test_run_task_help_lists_the_tasks_options_with_defaults_and_meanings(runner, toy_host):
    """`lorakit run toy --help`: the generic help plus every toy option with
    its default and its `#:` line, and the run settings its recipes give."""
    result = runner.invoke(cli, ["run", "toy", "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage:" in result.output and "--resume" in result.output
    lines = result.output.splitlines()
    nan = next(line for line in lines if line.strip().startswith("--nan_at_call"))
    assert nan.split()[1] == "none" and "Make the loss NaN from this loss call on" in nan
    assert any(line.strip().startswith("--outputs 1") for line in lines)
    assert "--train.epochs 10" in result.output and "--lora.r 8" in result.output
    watchable = " ".join(result.output.split("--train.metric takes")[1].split())
    assert watchable == ("val_loss (lower is better), mse (lower is better), mae (lower is better; measured only "
                         "under an option above).")
    caption = " ".join(runner.invoke(cli, ["run", "caption", "--help"]).output.split())
    assert "clip_score (higher is better; measured only under --clip)." in caption

    # An option named as a core field is shown by the flag that reaches it.
    voice = runner.invoke(cli, ["run", "voice-clone", "--help"]).output.splitlines()
    assert any(line.strip().startswith("--options.seed 0") for line in voice)
    assert not any(line.strip().startswith("--seed") for line in voice)

    bare = runner.invoke(cli, ["run", "--help"])
    assert bare.exit_code == 0 and "--nan_at_call" not in bare.output and "lorakit run TASK --help" in bare.output
    missing = runner.invoke(cli, ["run"])
    assert missing.exit_code == 2 and "Missing argument 'RECIPE_OR_TASK'" in missing.output


def test_option_meanings_come_from_comments_and_docstring_entries():
    from dataclasses import dataclass

    from lorakit.task import TaskOptions
    from lorakit.task_help import option_meanings

    @dataclass
    class Options(TaskOptions):
        """Options.

        * ``window``: seconds per window.
        * ``top_k``, ``temperature``: sampling
          settings.
        """

        #: a word before each caption.
        trigger: str = ""
        window: float = 10.0
        top_k: int = 250
        temperature: float = 1.0

    assert option_meanings(Options) == {"trigger": "a word before each caption.", "window": "seconds per window.",
                                        "top_k": "sampling settings.", "temperature": "sampling settings."}


@pytest.mark.parametrize("rank, hinted", [(None, True), ("0", True), ("1", False)])
def test_an_interrupted_command_hints_at_resume_once_across_processes(monkeypatch, rank, hinted):
    """torchrun passes Ctrl-C to every process; the hint comes from the first only."""
    import click

    from lorakit.cli import LorakitGroup

    @click.group(cls=LorakitGroup)
    def group():
        pass

    @group.command()
    @click.option("--resume", is_flag=True)
    def train(resume):
        raise KeyboardInterrupt

    @group.command()
    def convert():  # a command without --resume is not told to use it (an import said so)
        raise KeyboardInterrupt

    if rank is None:
        monkeypatch.delenv("RANK", raising=False)
    else:
        monkeypatch.setenv("RANK", rank)
    result = CliRunner().invoke(group, ["train"])
    assert result.exit_code == 130
    assert ("plus --resume" in result.output) == hinted, result.output
    result = CliRunner().invoke(group, ["convert"])
    assert result.exit_code == 130 and ("interrupted" in result.output) == hinted
    assert "--resume" not in result.output, result.output


@pytest.mark.parametrize("args, named", [
    (["run", "toy", "--data", "MISSING"], "(data.path, --points)"),
    (["train", "toy", "--points", "MISSING"], "(data.path, --points)"),
    (["run", "toy", "--data", "DATA", "--data.eval_path", "MISSING"], "(data.eval_path)"),
    (["run", "toy", "--data", "DATA", "--retain", "MISSING"], "(data.retain)"),
    (["plan", "toy", "--data", "MISSING"], "(data.path, --points)"),
    (["evaluate", "RUN", "--data", "MISSING"], "(--data)"),
    (["evaluate", "RUN", "--retain", "MISSING"], "(--retain)"),
    (["evaluate", "--adapter", "RUN", "--adapter", "COPY:0.5", "--data", "MISSING"], "(--data)"),
])
def test_a_missing_data_path_is_refused_before_any_model_loads(runner, toy_data, tmp_path, monkeypatch, args, named):
    """A mistyped folder is said in a second, not after the base's load, and
    names the setting it came from; nothing is left where the run would go."""
    import lorakit.composition
    import lorakit.runs

    def no_base(*args, **kwargs):
        raise AssertionError("the base loaded before the data paths were checked")

    run_dir = tmp_path / "trained"
    if "RUN" in args:  # lorakit evaluate: a real run, so only the data path is wrong
        trained = runner.invoke(cli, ["train", "toy", "--data", str(toy_data), "--output", str(run_dir),
                                      "--epochs", "1", "--quiet"])
        assert trained.exit_code == 0, trained.output
        shutil.copytree(run_dir, tmp_path / "copy")  # a second adapter to compose with (the same one twice is refused)
    monkeypatch.setattr(lorakit.runs, "load_base", no_base)
    monkeypatch.setattr(lorakit.composition, "load_base", no_base)
    missing = tmp_path / "typo"
    values = {"MISSING": str(missing), "DATA": str(toy_data), "RUN": str(run_dir),
              "COPY:0.5": f"{tmp_path / 'copy'}:0.5"}
    monkeypatch.chdir(tmp_path)
    before = sorted(tmp_path.rglob("*"))
    result = runner.invoke(cli, [values.get(a, a) for a in args])
    assert result.exit_code != 0
    assert f"{missing} {named} does not exist" in result.output, result.output
    assert sorted(tmp_path.rglob("*")) == before


def test_a_run_whose_data_moved_is_evaluated_on_the_data_given(runner, toy_data, tmp_path):
    """`lorakit evaluate RUN --data DIR` reads only what it is not given from
    the run: its data may have moved since it trained. Without --data the
    run's missing folder is named before any model loads, with the fix."""
    from toy_plugin import write_toy_data

    retain = write_toy_data(tmp_path / "old-domain", n=40, seed=3)
    run_dir = tmp_path / "run"
    trained = runner.invoke(cli, ["train", "toy", "--data", str(toy_data), "--retain", str(retain), "--output",
                                  str(run_dir), "--epochs", "1", "--quiet"])
    assert trained.exit_code == 0, trained.output
    toy_data.rename(tmp_path / "moved")
    other = write_toy_data(tmp_path / "other", n=30, seed=5)

    result = runner.invoke(cli, ["evaluate", str(run_dir), "--json"])
    assert result.exit_code != 0
    assert f"{toy_data} (data.path in {run_dir / 'config.yaml'}) no longer exists" in result.output, result.output
    assert "pass --data DIR" in result.output

    result = runner.invoke(cli, ["evaluate", str(run_dir), "--data", str(other), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["test"]["examples"] == 30 and report["retain"]["examples"] == 40  # the run's retain set, still where it was

    retain.rename(tmp_path / "old-domain-moved")
    result = runner.invoke(cli, ["evaluate", str(run_dir), "--data", str(other), "--json"])
    assert result.exit_code != 0 and "(data.retain in" in result.output and "pass --retain DIR" in result.output
    result = runner.invoke(cli, ["evaluate", str(run_dir), "--data", str(other), "--retain", str(other), "--json"])
    assert result.exit_code == 0, result.output
