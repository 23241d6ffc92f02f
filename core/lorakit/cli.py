"""The ``lorakit`` command: parses, calls the library, turns errors into one message."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from lorakit.errors import LorakitError

PASS_THROUGH = {"ignore_unknown_options": True, "allow_extra_args": True}


class LorakitGroup(click.Group):
    """A click group that prints LorakitError as one line and exits non-zero."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except LorakitError as exc:
            from lorakit.progress import console

            from lorakit.progress import escape

            # The message is plain text: brackets in it ("[a, b]") are not markup.
            console.print(f"[bold red]error:[/bold red] {escape(str(exc))}", highlight=False, soft_wrap=True)
            sys.exit(exc.exit_code)
        except KeyboardInterrupt:
            from lorakit.progress import console

            console.print("[yellow]interrupted[/yellow]: a run can be continued with the same command plus --resume")
            sys.exit(130)


@click.group(cls=LorakitGroup)
@click.version_option(package_name="lorakit")
def cli() -> None:
    """LoRA adapters for models that are not chat LLMs.

    \b
    lorakit run caption --data samples/caption/catalog --base demo
    lorakit predict caption --adapter runs/caption-1 photo.png
    lorakit tasks | plugins | recipes
    """


# -- training -------------------------------------------------------------------


def _train_command(name: str, evaluate: bool, help_text: str) -> None:
    @cli.command(name, context_settings=PASS_THROUGH, help=help_text)
    @click.argument("target", metavar="RECIPE_OR_TASK")
    @click.option("--resume", is_flag=True, help="Continue the run in --output from its last checkpoint.")
    @click.option("--quiet", is_flag=True, help="No progress bar.")
    @click.pass_context
    def command(ctx: click.Context, target: str, resume: bool, quiet: bool) -> None:
        from lorakit import runs

        config = runs.load_config(target, list(ctx.args))
        outcome = runs.run(config, resume=resume, evaluate=evaluate, show_progress=not quiet)
        if outcome.adapter_dir is None:
            return
        if outcome.report:
            print_report(outcome.report)
        click.echo(f"adapter: {outcome.adapter_dir}")
        click.echo(f"run:     {outcome.run_dir}  (log.jsonl, tb/, checkpoints/, report.json)")


_train_command("run", True, """Train, evaluate base vs adapter on held-out data, export the adapter.

\b
RECIPE_OR_TASK is a recipe file or name (see `lorakit recipes`) or a task.
Any config field can follow as a flag: --data DIR, --base demo, --output DIR,
--lora.r 16, --train.epochs 3, --retain DIR, and the task's own options.""")
_train_command("train", False, """Train and export the adapter, without the base-vs-adapter evaluation.

Takes the same arguments and flags as `lorakit run`.""")


@cli.command()
@click.argument("run_dir", type=click.Path())
@click.option("--data", help="Evaluate on this data instead of the run's held-out split.")
@click.option("--retain", help="Also measure forgetting on this data of the base's old domain.")
@click.option("--ignore-base-mismatch", is_flag=True, help="Apply the adapter to a base with other weights.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def evaluate(run_dir: str, data: str | None, retain: str | None, ignore_base_mismatch: bool, as_json: bool) -> None:
    """Compare base and adapter of RUN_DIR on held-out data."""
    from lorakit import runs

    report = runs.evaluate_run(run_dir, data, retain, ignore_base_mismatch)
    click.echo(json.dumps(report, indent=2)) if as_json else print_report(report)


@cli.command(context_settings=PASS_THROUGH)
@click.argument("task")
@click.argument("inputs", nargs=-1)
@click.option("--text", "texts", multiple=True, help="A text input (repeatable), e.g. a sentence to speak.")
@click.option("--adapter", help="A run folder or adapter folder; none = the base alone.")
@click.option("--base", "base_name", help="The base model (default: the adapter's own base, or demo).")
@click.option("--ignore-base-mismatch", is_flag=True, help="Apply the adapter to a base with other weights.")
@click.option("--out", type=click.Path(), help="JSON lines file; for audio, a .wav (one input) or a folder.")
@click.pass_context
def predict(ctx: click.Context, task: str, inputs: tuple[str, ...], texts: tuple[str, ...], adapter: str | None,
            base_name: str | None, ignore_base_mismatch: bool, out: str | None) -> None:
    """Run TASK on INPUTS (image files, ...) or --text; task options go as flags."""
    from lorakit import runs
    from lorakit.predictions import write_predictions

    inputs, options, input_flags = split_predict_arguments(task, [*inputs, *ctx.args])
    results = runs.predict(task, [*inputs, *texts], adapter, base_name, options, ignore_base_mismatch, input_flags)
    lines = write_predictions(results, Path(out) if out else None)
    if out and not out.endswith(".wav"):
        click.echo(f"{len(results)} predictions written to {out}")
    else:
        click.echo(lines, nl=False)


@cli.command()
@click.argument("run_dir", type=click.Path())
@click.option("--merged", "out", required=True, type=click.Path(), help="Folder for the merged model.")
@click.option("--ignore-base-mismatch", is_flag=True, help="Apply the adapter to a base with other weights.")
def export(run_dir: str, out: str, ignore_base_mismatch: bool) -> None:
    """Merge the adapter of RUN_DIR into its base and write a plain model folder."""
    from lorakit import runs

    difference = runs.export_merged(run_dir, out, ignore_base_mismatch)
    click.echo(f"merged model written to {out} (merged vs unmerged outputs differ by at most {difference:.2e})")


def split_predict_arguments(task: str, tokens: list[str]) -> tuple[tuple[str, ...], dict[str, Any], dict[str, Any]]:
    """Positional inputs, task options and input flags of ``lorakit predict``,
    in any order: ``--name value`` takes one value unless the option is a
    switch (a bool field); ``--options.NAME`` is the same as ``--NAME``."""
    import dataclasses

    from lorakit.capabilities import CommandLineInputs
    from lorakit.errors import ConfigError
    from lorakit.plugins import get_host
    from lorakit.recipes import parse_flags

    task_class = get_host().task(task)
    input_names = task_class.input_flags if issubclass(task_class, CommandLineInputs) else ()
    switches = {f.name for f in dataclasses.fields(task_class.options_class) if f.type in (bool, "bool")}
    inputs, flag_tokens, i = [], [], 0
    while i < len(tokens):
        token = tokens[i]
        if not token.startswith("--"):
            inputs.append(token)
            i += 1
            continue
        name = token[2:].split("=", 1)[0].replace("-", "_").removeprefix("options.")
        takes_value = "=" not in token and name not in switches and i + 1 < len(tokens) and not tokens[i + 1].startswith("--")
        flag_tokens += tokens[i : i + 1 + takes_value]
        i += 1 + takes_value
    options: dict[str, Any] = {}
    input_flags: dict[str, Any] = {}
    for key, value in parse_flags(flag_tokens):
        key = key.removeprefix("options.")
        if "." in key:
            raise ConfigError(f"--{key}: lorakit predict takes task options (--NAME or --options.NAME) and inputs, "
                              "not run settings")
        if key not in input_names:
            options[key] = value
        elif key in input_flags:  # a repeated input flag collects a list
            before = input_flags[key]
            input_flags[key] = [*before, value] if isinstance(before, list) else [before, value]
        else:
            input_flags[key] = value
    return tuple(inputs), options, input_flags


# -- discovery ------------------------------------------------------------------


@cli.command()
def tasks() -> None:
    """List the tasks that plugins provide."""
    from lorakit.plugins import get_host

    host = get_host()
    owner = {t: p.name for p in host.plugins.values() for t in p.tasks}
    for name, task_class in sorted(host.tasks.items()):
        click.echo(f"{name:16} {task_class.description}  [{owner.get(name, '?')}]")
    for info in host.errors():
        click.echo(f"(plugin {info.name} failed: {info.error})", err=True)


@cli.command()
def plugins() -> None:
    """List plugins with version, hooks and tasks, and the errors of broken ones."""
    from lorakit.plugins import get_host

    for info in get_host().plugins.values():
        if info.error:
            click.echo(f"{info.name} {info.version}  ERROR: {info.error}")
        else:
            click.echo(f"{info.name} {info.version}  hooks: {', '.join(info.hooks)}  tasks: {', '.join(info.tasks) or '-'}")


@cli.command()
def recipes() -> None:
    """List recipes and the command that runs each."""
    from lorakit.recipes import list_recipes

    for recipe in list_recipes():
        click.echo(f"{recipe.name:24} task {recipe.task:12} {recipe.command or recipe.path}")


@cli.command("new-plugin")
@click.argument("name")
@click.option("--out", default=".", show_default=True, type=click.Path(file_okay=False),
              help="Folder in which lorakit-NAME/ is written.")
def new_plugin(name: str, out: str) -> None:
    """Write a plugin package lorakit-NAME/ that installs and passes
    lorakit.testing as it is: pyproject with the entry point, a task with
    every required method, a recipe, sample data, a conformance test.
    NAME is kebab-case, e.g. audio-tags."""
    from lorakit.plugins import get_host
    from lorakit.scaffold import new_plugin as write_plugin

    target = write_plugin(name, out, taken=set(get_host().tasks))
    click.echo(f"wrote {target}\nnext: pip install -e '{target}[test]' && lorakit run {name} && "
               f"python -m pytest {target / 'tests'}")


def print_report(report: dict[str, Any]) -> None:
    """The base vs adapter table."""
    from rich.table import Table

    from lorakit.progress import console

    table = Table(title="base vs adapter")
    for column in ("split", "metric", "base", "adapter", "change"):
        table.add_column(column, justify="left" if column in ("split", "metric") else "right")
    for split, pair in report.items():
        for metric, value in pair["adapter"].items():
            before = pair["base"].get(metric)
            change = f"{value - before:+.4f}" if before is not None else ""
            table.add_row(f"{split} ({pair['examples']})", metric, f"{before:.4f}", f"{value:.4f}", change)
    console.print(table)


def _register_plugin_commands() -> None:
    """Let plugins add commands; a failing plugin is reported by `lorakit plugins`."""
    from lorakit.plugins import get_host

    host = get_host()
    for impl in host.pm.hook.register_commands.get_hookimpls():
        try:
            impl.function(cli=cli)
        except Exception as exc:  # a plugin's bug must not break the CLI
            host.plugins[impl.plugin_name].error = f"register_commands failed: {type(exc).__name__}: {exc}"


def main() -> None:
    _register_plugin_commands()
    cli()
