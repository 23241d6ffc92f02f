"""What `lorakit run TASK --help` adds to the generic help: the task's own
options with their defaults and meanings, and the settings its recipes set.

Meanings come from the options class: a ``#:`` comment above a field (as
``lorakit new-plugin`` writes them), or an entry of its docstring as in the
built-in tasks, ``* ``name``: what it does`` (several names may share an
entry: ````a``, ``b``: ...``).
"""

from __future__ import annotations

import dataclasses
import inspect
import re
import textwrap
from typing import Any

#: Settings of every run shown with the values this task's recipes give them.
SHOWN_SETTINGS = (("base", None), ("lora", "r"), ("lora", "alpha"), ("train", "epochs"), ("train", "max_steps"),
                  ("train", "lr"), ("train", "batch_size"), ("train", "eval_every"), ("train", "metric"))


def option_meanings(options_class: type) -> dict[str, str]:
    """``{option name: one-line meaning}`` from the options class's ``#:``
    comments and docstring."""
    meanings = {}
    try:
        source = inspect.getsource(options_class)
    except (OSError, TypeError):
        source = ""
    comment: list[str] = []
    for line in source.splitlines():
        line = line.strip()
        if line.startswith("#:"):
            comment.append(line[2:].strip())
            continue
        field = re.match(r"(\w+)\s*:", line)
        if field and comment:
            meanings[field.group(1)] = " ".join(comment)
        comment = []
    doc = inspect.getdoc(options_class) or ""
    for entry in re.split(r"\n\s*(?=\* )|\n\s*\n", doc):
        entry = " ".join(entry.strip().removeprefix("* ").split())
        head, colon, meaning = entry.partition(": ")
        if colon and re.fullmatch(r"``\w+``((, | and |, and )``\w+``)*", head):
            for name in re.findall(r"``(\w+)``", head):
                meanings[name] = meaning.replace("``", "")
    return meanings


def settings_help(target: str) -> str:
    """The help section for RECIPE_OR_TASK ``target``; empty when ``target``
    names no task (the generic help alone is then shown)."""
    from lorakit.capabilities import CommandLineInputs
    from lorakit.errors import LorakitError
    from lorakit.recipes import load_run_config

    try:
        config = load_run_config(target, [])
        from lorakit.plugins import get_host

        task_class = get_host().task(config.task)
    except LorakitError:
        return ""
    lines = [f"Options of the {config.task} task (--NAME VALUE or --options.NAME VALUE), with the defaults of "
             f"{'recipe ' + target if target != config.task else 'its own recipe'}:"]
    options = task_class.options_class(**config.options)
    meanings = option_meanings(task_class.options_class)
    names = [field.name for field in dataclasses.fields(options)]
    for field in dataclasses.fields(options):
        flag = f"  --{option_flag(field.name, names)} {_shown(getattr(options, field.name))}"
        lines += _described(flag, meanings.get(field.name, ""))
    if issubclass(task_class, CommandLineInputs) and task_class.aliases:
        lines.append("Flags of this task:")
        for alias, key in task_class.aliases.items():
            lines.append(f"  --{alias} (= --{key})")
    lines.append(f"Run settings for {config.task} here (any config field can be given as a flag):")
    settings = []
    for section, name in SHOWN_SETTINGS:
        value = getattr(config, section) if name is None else getattr(getattr(config, section), name)
        # A no-break space keeps a flag and its value on one line.
        settings.append(f"--{section if name is None else section + '.' + name}\u00a0{_shown(value)}")
    wrapped = textwrap.wrap("  ".join(settings), width=100, initial_indent="  ", subsequent_indent="  ",
                            break_on_hyphens=False)
    lines += [line.replace("\u00a0", " ") for line in wrapped]
    lines += _described("  --train.metric takes", _watchable_metrics(task_class))
    return "\n".join(lines)


def _watchable_metrics(task_class: Any) -> str:
    """The metrics ``--train.metric`` may name, each with its better direction."""
    better = {"max": "higher is better", "min": "lower is better"}
    metrics = ["val_loss (lower is better)"]
    metrics += [f"{name} ({better.get(way, way)})" for name, way in task_class.metrics.items()]
    names = [field.name for field in dataclasses.fields(task_class.options_class)]
    for name, way in task_class.optional_metrics.items():
        option = task_class.metric_options.get(name)
        under = f"--{option_flag(option, names)}" if option else "an option above"
        metrics.append(f"{name} ({better.get(way, way)}; measured only under {under})")
    return ", ".join(metrics) + "."


def option_flag(name: str, option_names: list[str]) -> str:
    """The flag that reaches option ``name``: the short one unless the flag
    resolver gives it to another field or finds it ambiguous (``seed``)."""
    from lorakit.errors import ConfigError
    from lorakit.recipes import resolve_key

    try:
        short = resolve_key(name, option_names) == ["options", name]
    except ConfigError:
        short = False
    return name if short else f"options.{name}"


def _described(flag: str, meaning: str) -> list[str]:
    if not meaning:
        return [flag]
    width = 28
    if len(flag) < width:
        first, rest = flag.ljust(width), " " * width
        return textwrap.wrap(meaning, width=100, initial_indent=first, subsequent_indent=rest)
    return [flag, *textwrap.wrap(meaning, width=100, initial_indent=" " * width, subsequent_indent=" " * width)]


def _shown(value: Any) -> str:
    if value is None:
        return "none"
    if isinstance(value, str):
        return repr(value) if value == "" or " " in value else value
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(map(str, value)) + "]"
    return str(value)
