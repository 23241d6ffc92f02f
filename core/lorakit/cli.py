"""The ``lorakit`` command: parses, calls the library, turns errors into one message."""

from __future__ import annotations

import errno
import json
import os
import re
import sys
from pathlib import Path
from typing import Any

import click

from lorakit.errors import ConfigError, LorakitError, OutputError
from lorakit.serving.command import serve as serve_command

PASS_THROUGH = {"ignore_unknown_options": True, "allow_extra_args": True}


class LorakitGroup(click.Group):
    """A click group that prints LorakitError as one line and exits non-zero."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except LorakitError as exc:
            _say_error(str(exc))
            sys.exit(exc.exit_code)
        except OSError as exc:
            if exc.errno != errno.ENAMETOOLONG:
                raise
            # A sentence given where a path goes (caption's --text, a pasted caption): no file has such a name.
            name = str(exc.filename or "")
            _say_error(f"{name[:60]}...: too long for a file or folder name ({len(name.encode())} bytes; a "
                       "name takes at most 255)")
            sys.exit(1)
        except click.exceptions.NoArgsIsHelpError:
            raise  # a bare command shows its help
        except click.UsageError as exc:  # click's own (a flag without its value, a number out of range)
            _say_error(f"{exc.format_message()} ({exc.ctx.command_path} --help)" if exc.ctx else exc.format_message())
            sys.exit(exc.exit_code)
        except KeyboardInterrupt:
            from lorakit.device import launch_rank
            from lorakit.progress import console

            if launch_rank() == 0:  # several processes: one hint, not one per process
                command = self.get_command(ctx, ctx.invoked_subcommand or "")
                if command is not None and any(param.name == "resume" for param in command.params):
                    console.print("[yellow]interrupted[/yellow]: continue with the same command plus --resume")
                else:  # an import, an export: written whole or not at all, so run again
                    console.print("[yellow]interrupted[/yellow]")
            sys.exit(130)


def _say_error(message: str) -> None:
    """One line on stderr: ``error: message``."""
    from lorakit.progress import console, escape

    # The message is plain text: brackets in it ("[a, b]") are not markup.
    console.print(f"[bold red]error:[/bold red] {escape(message)}", highlight=False, soft_wrap=True)


@click.group(cls=LorakitGroup)
@click.version_option(package_name="lorakit")
def cli() -> None:
    """LoRA adapters for models that are not chat LLMs.

    \b
    lorakit run voice-clone --speaker samples/voice/kauko --base demo
    lorakit predict voice-clone --adapter runs/voice-clone-1 --text "Hello." --out hello.wav
    lorakit run caption --data samples/caption/catalog --base demo
    lorakit caption photos/ --adapter runs/caption-1 --out captions.jsonl
    lorakit serve runs/ --base voice-clone=demo
    lorakit tasks | plugins | recipes
    """


# -- training -------------------------------------------------------------------


def _train_command(name: str, evaluate: bool, help_text: str) -> None:
    @cli.command(name, context_settings=PASS_THROUGH, help=help_text, add_help_option=False)
    @click.argument("target", metavar="RECIPE_OR_TASK", required=False)
    @click.option("--resume", is_flag=True, help="Continue the run in --output from its last checkpoint.")
    @click.option("--quiet", is_flag=True, help="No progress bar.")
    @click.option("--help", "show_help", is_flag=True,
                  help="Show this message (with a RECIPE_OR_TASK: its options and defaults too) and exit.")
    @click.pass_context
    def command(ctx: click.Context, target: str | None, resume: bool, quiet: bool, show_help: bool) -> None:
        from lorakit import runs

        if show_help:
            # Not click's eager --help: it would answer before knowing the task.
            from lorakit.task_help import settings_help

            click.echo(ctx.get_help())
            extra = settings_help(target) if target else ""
            click.echo("\n" + extra if extra else "\nlorakit run TASK --help also lists the task's own options.")
            return
        if target is None:
            raise click.UsageError("Missing argument 'RECIPE_OR_TASK' (a task such as caption, or a recipe; "
                                   "see `lorakit tasks` and `lorakit recipes`)", ctx)
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


@cli.command(context_settings=PASS_THROUGH)
@click.argument("target", metavar="RECIPE_OR_TASK")
@click.option("--memory", help="A memory budget (24GB, 16GiB, 800MB): say the largest batch that fits it.")
@click.option("--device", type=click.Choice(["cpu", "cuda"]), help="The device the run is for (default: this machine's).")
@click.option("--measure", is_flag=True, help="Also train a few steps in a fresh process and show the measured peak.")
@click.option("--json", "as_json", is_flag=True, help="Print the plan as JSON (bytes).")
@click.pass_context
def plan(ctx: click.Context, target: str, memory: str | None, device: str | None, measure: bool, as_json: bool) -> None:
    """Predict a run's peak training memory: weights, LoRA + optimizer states, activations.

    \b
    Takes the arguments and flags of `lorakit run`, data included: the model is
    built as the run builds it and activations are measured by running real
    training steps on the CPU (no GPU needed), at two batch sizes.
    lorakit plan caption-blip-base --data photos/ --memory 16GB"""
    from lorakit import planning, runs

    budget = planning.parse_memory(memory) if memory is not None else None
    config = runs.load_config(target, list(ctx.args))
    result = planning.plan(config, budget, device)
    measured = None
    if measure:
        from lorakit.errors import ConfigError
        from lorakit.peak import measure as measure_peak

        if result.device != planning.target_device(None):
            raise ConfigError(f"--measure trains on this machine, which has no {result.device}; drop --device or --measure")
        measured = measure_peak(config)
    if as_json:
        out = result.to_dict()
        if measured is not None:
            out["measured"] = {"peak": measured.peak, "resident": measured.resident, "steps": measured.steps}
        click.echo(json.dumps(out, indent=2))
    else:
        print_plan(result, measured)


@cli.command()
@click.argument("run_dir", type=click.Path(), required=False)
@click.option("--adapter", "adapters", multiple=True, metavar="RUN[:WEIGHT]",
              help="Instead of RUN_DIR, repeated: a composition report of each adapter alone and all combined.")
@click.option("--data", help="Evaluate on this data instead of the run's held-out split (with --adapter: "
                             "instead of every adapter's).")
@click.option("--retain", help="Also measure forgetting on this data of the base's old domain.")
@click.option("--ignore-base-mismatch", is_flag=True, help="Apply the adapter to a base with other weights.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.pass_context
def evaluate(ctx: click.Context, run_dir: str | None, adapters: tuple[str, ...], data: str | None,
             retain: str | None, ignore_base_mismatch: bool, as_json: bool) -> None:
    """Compare base and adapter of RUN_DIR on held-out data.

    With --adapter A[:WEIGHT], repeated, instead of RUN_DIR: a composition
    report. Each adapter's own held-out examples are evaluated with the base,
    with that adapter alone (at its weight) and with all of them combined, to
    show interference before a mix ships.

    \b
    lorakit evaluate --adapter runs/style:0.7 --adapter runs/domain:0.5
    """
    from lorakit import runs
    from lorakit.apply import parse_adapter

    if run_dir is not None and adapters:
        raise ConfigError(f"lorakit evaluate takes RUN_DIR or --adapter, not both: add {run_dir} as another "
                          "--adapter for a composition report")
    if adapters:
        from lorakit.composition import composition_report

        report = composition_report([parse_adapter(a) for a in adapters], data, retain,
                                    ignore_base_mismatch=ignore_base_mismatch)
        click.echo(json.dumps(report, indent=2)) if as_json else print_composition(report)
        return
    if run_dir is None:
        raise click.UsageError("Missing argument 'RUN_DIR' (or --adapter RUN[:WEIGHT], repeated, for a "
                               "composition report)", ctx)
    from lorakit.progress import watched

    with watched():  # the evaluation's bar
        report = runs.evaluate_run(run_dir, data, retain, ignore_base_mismatch)
    click.echo(json.dumps(report, indent=2)) if as_json else print_report(report)


@cli.command(context_settings=PASS_THROUGH)
@click.argument("task")
@click.argument("inputs", nargs=-1)
@click.option("--text", "texts", multiple=True, help="A text input (repeatable), e.g. a sentence to speak.")
@click.option("--adapter", "adapters", multiple=True, metavar="RUN[:WEIGHT]",
              help="A run folder or adapter folder; repeat with weights to merge several (A:0.7 --adapter B:0.5); "
                   "none = the base alone.")
@click.option("--base", "base_name", help="The base model (default: the adapter's own base, or demo).")
@click.option("--ignore-base-mismatch", is_flag=True, help="Apply the adapter to a base with other weights.")
@click.option("--out", type=click.Path(), help="JSON lines file; for audio, a .wav, .flac, .mp3, .ogg or .opus "
                                               "(one input) or a folder.")
@click.pass_context
def predict(ctx: click.Context, task: str, inputs: tuple[str, ...], texts: tuple[str, ...], adapters: tuple[str, ...],
            base_name: str | None, ignore_base_mismatch: bool, out: str | None) -> None:
    """Run TASK on INPUTS (image files, ...) or --text; task options go as flags.

    With several --adapter RUN:WEIGHT, the task options are the first adapter's unless given here."""
    from lorakit import runs
    from lorakit.apply import parse_adapter
    from lorakit.predictions import check_audio_target, check_lines_target, is_audio_file, write_predictions

    inputs, options, input_flags = split_predict_arguments(task, [*inputs, *ctx.args])
    probe, given = runs.prediction_inputs(task, [*inputs, *texts], options, input_flags)
    if probe.predicts_audio:  # said before the base loads and the work is done
        if out and out.endswith(("/", os.sep)) and is_audio_file(out):  # Path() would drop the "/" that says folder
            raise ConfigError(f"--out {out} names a folder like an audio file: drop the final / to write one "
                              f"{Path(out).suffix} file, or name the folder otherwise")
        check_audio_target(Path(out) if out else None, len(given))
    elif out:
        check_lines_target(Path(out), given)
    weighted = [parse_adapter(a) for a in adapters]
    # One adapter without a weight opens as it always has; otherwise the adapters merge at their weights.
    adapter = adapters[0] if len(adapters) == 1 and weighted[0][0] == adapters[0] else weighted or None
    from lorakit.progress import watched

    with watched():
        results = runs.predict(task, [*inputs, *texts], adapter, base_name, options, ignore_base_mismatch, input_flags)
    lines = write_predictions(results, Path(out) if out else None)
    if out and not is_audio_file(out):
        click.echo(f"{len(results)} prediction{'s' if len(results) != 1 else ''} written to {out}")
    else:
        click.echo(lines, nl=False)


@cli.command(context_settings=PASS_THROUGH)
@click.argument("run_dir", type=click.Path())
@click.option("--merged", "out", type=click.Path(), help="Folder for the merged model, in the model's own format.")
@click.option("--ignore-base-mismatch", is_flag=True, help="Apply the adapter to a base with other weights.")
@click.pass_context
def export(ctx: click.Context, run_dir: str, out: str | None, ignore_base_mismatch: bool) -> None:
    """Merge the adapter of RUN_DIR into its base and write a plain model folder.

    A task may write other formats too, named as the flag: `--piper OUT` for a
    voice trained from a Piper base (`lorakit tasks` lists each task's formats).
    """
    from lorakit import runs

    format, out = export_target(out, ctx.args)
    difference = runs.export_merged(run_dir, out, ignore_base_mismatch, format=format)
    click.echo(f"{'merged model' if format == 'merged' else format + ' export'} written to {out} "
               f"(merged vs unmerged outputs differ by at most {difference:.2e})")


@cli.command()
@click.argument("run_dir", type=click.Path())
@click.option("--out", type=click.Path(), help="The HTML file to write (default: RUN_DIR/report.html).")
def report(run_dir: str, out: str | None) -> None:
    """Write RUN_DIR's report as one HTML file to share: base vs adapter, the
    training curves, and the samples to listen to and look at, embedded."""
    from lorakit.atomic import atomic_write_text, check_writable
    from lorakit.report_page import is_report, run_report_html

    if not Path(run_dir).is_dir():
        raise ConfigError(f"{run_dir}: no such folder; pass a run folder made by `lorakit run`")
    own = Path(run_dir) / "report.html"  # always rewritten
    target = Path(out) if out else own
    check_writable(target, "--out")
    if target.is_file() and target.resolve() != own.resolve() and not is_report(target):
        raise OutputError(f"--out {target} exists and is not a report lorakit wrote: choose another file, or "
                          "remove it to write there")
    atomic_write_text(target, run_report_html(run_dir))
    click.echo(f"report written to {target}")


def export_target(merged: str | None, extra: list[str]) -> tuple[str, str]:
    """``(format, folder)`` of ``lorakit export``: ``--merged OUT`` or ``--FORMAT OUT``."""
    if merged is not None and not extra:
        if not merged.strip():  # "" is the working folder to pathlib: ". already exists" said nothing useful
            raise ConfigError("--merged was given an empty folder name; name the folder to write, "
                              "e.g. --merged merged/")
        return "merged", merged
    if len(extra) == 1 and "=" in extra[0]:  # --piper=OUT
        extra = extra[0].split("=", 1)
    if merged is None and len(extra) == 2 and re.fullmatch(r"--[a-z][a-z0-9-]*", extra[0]) \
            and not extra[1].startswith("-"):
        if not extra[1].strip():
            raise ConfigError(f"{extra[0]} was given an empty folder name; name the folder to write")
        return extra[0][2:], extra[1]
    given = " ".join((["--merged", merged] if merged else []) + list(extra))
    raise ConfigError("lorakit export: give one output: --merged OUT, or --FORMAT OUT for a format the task "
                      f"writes (got: {given or 'nothing'})")


def split_predict_arguments(task: str, tokens: list[str]) -> tuple[tuple[str, ...], dict[str, Any], dict[str, Any]]:
    """Positional inputs, task options and input flags of ``lorakit predict``,
    in any order: ``--name value`` takes one value unless the option is a
    switch (a bool field); ``--options.NAME`` is the same as ``--NAME``."""
    import dataclasses

    from lorakit.capabilities import CommandLineInputs
    from lorakit.config import switch_value
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
    known = [f.name for f in dataclasses.fields(task_class.options_class)]
    options: dict[str, Any] = {}
    input_flags: dict[str, Any] = {}
    for key, value in parse_flags(flag_tokens):
        key = key.removeprefix("options.")
        if "." in key:
            raise ConfigError(f"--{key}: lorakit predict takes task options (--NAME or --options.NAME) and inputs, "
                              "not run settings")
        if key in input_names or key in known:  # an unknown one is said below
            value = switch_value(key, value, key in switches)  # only a true/false option stands alone
        if key not in input_names:
            options[key] = value
        elif key in input_flags:  # a repeated input flag collects a list
            before = input_flags[key]
            input_flags[key] = [*before, value] if isinstance(before, list) else [before, value]
        else:
            input_flags[key] = value
    unknown = [key for key in options if key not in known]
    if unknown:  # said here, where inputs are, not as a recipe's "unknown field options.NAME"
        inputs_help = task_class.inputs_help if issubclass(task_class, CommandLineInputs) else "input files or --text"
        raise ConfigError(f"lorakit predict {task} takes no --{unknown[0]}: its inputs are {inputs_help}; "
                          f"its options: {', '.join('--' + name for name in known) or 'none'}")
    return tuple(inputs), options, input_flags


# -- discovery ------------------------------------------------------------------


@cli.command()
def tasks() -> None:
    """List the tasks that plugins provide."""
    from lorakit.plugins import get_host

    host = get_host()
    owner = {t: p.name for p in host.plugins.values() for t in p.tasks}
    for name, task_class in sorted(host.tasks.items()):
        formats = "".join(f"  (lorakit export --{f})" for f in getattr(task_class, "export_formats", {}))
        click.echo(f"{name:16} {task_class.description}  [{owner.get(name, '?')}]{formats}")
    for info in host.errors():
        click.echo(f"(plugin {info.name} failed: {info.error})", err=True)


@cli.command()
def plugins() -> None:
    """List plugins with version, hooks and tasks, and the errors of broken ones."""
    from lorakit.plugins import get_host

    host = get_host()
    for info in host.plugins.values():
        if info.error:
            click.echo(f"{info.name} {info.version}  ERROR: {info.error}")
        else:
            click.echo(f"{info.name} {info.version}  hooks: {', '.join(info.hooks)}  tasks: {', '.join(info.tasks) or '-'}")
    if host.errors():  # a CI step running `lorakit plugins` fails on a broken plugin
        sys.exit(1)


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
    from lorakit.recipes import list_recipes
    from lorakit.scaffold import new_plugin as write_plugin

    target = write_plugin(name, out, taken={*get_host().tasks, *(r.name for r in list_recipes())})
    click.echo(f"wrote {target}\nnext: pip install -e '{target}[test]' && lorakit run {name} && "
               f"python -m pytest {target / 'tests'}")


def print_report(report: dict[str, Any]) -> None:
    """The base vs adapter table."""
    from rich.table import Table

    from lorakit.progress import console, escape

    table = Table(title="base vs adapter")
    for column in ("split", "metric", "base", "adapter", "change"):
        table.add_column(column, justify="left" if column in ("split", "metric") else "right")
    for split, pair in report.items():
        for metric, value in pair["adapter"].items():
            before = pair["base"].get(metric)
            change = f"{value - before:+.4f}" if before is not None else ""
            table.add_row(f"{split} ({pair['examples']})", metric, f"{before:.4f}", f"{value:.4f}", change)
    console.print(table)
    for pair in report.values():
        if pair.get("note"):
            console.print(escape(pair["note"]), highlight=False, soft_wrap=True)
        for line in pair.get("verdict", []):
            console.print(f"[yellow]below the bar:[/yellow] {escape(line)}", highlight=False, soft_wrap=True)


def print_composition(report: dict[str, Any]) -> None:
    """The composition table: per adapter, split and metric, base / alone / combined and the change."""
    from rich.table import Table

    from lorakit.progress import console, escape

    mix = " + ".join(f"{a['adapter']}:{a['weight']:g}" for a in report["combined"])
    table = Table(title=escape(f"composition on {report['base']}: {mix}"))
    for column in ("adapter", "split", "metric", "base", "alone", "combined", "change"):
        table.add_column(column, justify="left" if column in ("adapter", "split", "metric") else "right")
    for entry in report["adapters"]:
        for split, scores in entry["splits"].items():
            for metric, alone in scores["alone"].items():
                change = scores["change"].get(metric)
                shown = "" if change is None else f"{change:+.4f}"
                better = report["metrics"].get(metric)  # "min" or "max": colour the change by the metric's direction
                if shown and better in ("min", "max") and change != 0:
                    colour = "green" if (change < 0) == (better == "min") else "red"
                    shown = f"[{colour}]{shown}[/{colour}]"
                table.add_row(escape(f"{entry['adapter']}:{entry['weight']:g}"), f"{split} ({scores['examples']})",
                              escape(metric), f"{scores['base'][metric]:.4f}", f"{alone:.4f}",
                              f"{scores['combined'][metric]:.4f}", shown)
    console.print(table)
    console.print(escape(report["note"]), highlight=False, soft_wrap=True)


def print_plan(plan: Any, measured: Any = None) -> None:
    """The memory plan table, what fits the budget, and what is not counted."""
    from rich.table import Table

    from lorakit.planning import format_bytes as size
    from lorakit.progress import console, escape

    e, batch = plan.estimate, plan.batch
    table = Table(title=f"training memory: {plan.task} on {escape(plan.base)}")
    for column in ("part", "memory", "from"):
        table.add_column(column, justify="right" if column == "memory" else "left")
    table.add_row("weights", size(e.weights), f"{plan.frozen_parameters / 1e6:.1f} M frozen, {plan.base_dtype}")
    groups = "".join(f"\n  {name} {count / 1e6:.2f} M" for name, count in plan.trained_groups.items())
    table.add_row("LoRA + optimizer", size(e.trained), f"{plan.trained_parameters / 1e6:.2f} M trained x 16 B "
                  f"(weight, grad, AdamW){groups}")
    fixed = f" + {size(e.activations.fixed)}" if e.activations.fixed else ""
    whole = f" (the whole epoch; batch_size {plan.batch_size})" if batch < plan.batch_size else ""
    table.add_row("activations", size(e.activations.at(batch)), f"{size(e.activations.per_example)} per example "
                  f"x {batch}{whole}{fixed}")
    mixed = "off" if plan.precision == "no" else plan.precision
    table.add_row("total", size(plan.peak), f"{plan.device}, mixed precision {mixed}, checkpointing "
                  f"{'on' if plan.gradient_checkpointing else 'off'}", style="bold")
    if measured is not None:
        table.add_row("measured", size(measured.peak), f"{measured.steps} real steps: predicted / measured "
                      f"{plan.peak / measured.peak:.2f}")
    console.print(table)
    if plan.advice:
        console.print(escape(plan.advice), highlight=False)
    if plan.option is not None:
        console.print(f"  lorakit run ... {' '.join(plan.option.flags)}", highlight=False)
    if plan.device == "cuda":
        note = "measured on the CPU in the GPU's precision; the GPU adds its CUDA context (about 0.5 GB)"
    else:
        note = ("glibc's allocator may keep up to twice this resident; MALLOC_MMAP_THRESHOLD_=1048576 in the "
                "environment keeps it close")
    console.print(f"[dim]Tensors only: {note}.[/dim]")


# In its own module: it imports its libraries (the serve extra) only when run.
cli.add_command(serve_command)


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
