"""Recipes: YAML files that are data for a run, plus command-line overrides.

Every recipe opens with a comment naming the command that runs it. A flag is
``--section.field value`` (``--lora.r 16``), a top-level field (``--base demo``),
a field name unique across sections (``--epochs 3``, ``--retain DIR``), or a
task option (``--trigger sks``). ``--data DIR`` sets ``data.path``. Values are
read as YAML, so ``--lora.targets "[query, value]"`` is a list.
"""

from __future__ import annotations

import copy
import dataclasses
import os
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from lorakit.config import DATA_PATHS, SECTIONS, SWITCHED_ON, RunConfig, build, switch_value
from lorakit.errors import ConfigError, did_you_mean

TOP_LEVEL = ("task", "base", "base_dtype", "output")


@dataclass
class Recipe:
    """A recipe file found on disk; a file that cannot be used is listed too,
    with ``error`` saying why (and ``task``/``command`` saying it is broken)."""

    name: str
    path: Path
    task: str
    command: str
    error: str = ""


def recipe_dirs() -> list[Path]:
    """Where a user's own named recipes are looked up: ./recipes."""
    local = Path.cwd() / "recipes"
    return [local] if local.is_dir() else []


def list_recipes() -> list[Recipe]:
    """Recipes of ./recipes, then those plugins ship; the first of a name wins.
    A file that does not read is listed as broken: one bad file must not hide the others."""
    recipes = []
    for name, paths in _recipe_files().items():
        path = _first_of(name, paths)
        try:
            text = _read_text(path)
            task = str(_parse(path, text).get("task", ""))
        except ConfigError as exc:
            recipes.append(Recipe(name, path, "(broken)", f"error: {exc}", error=str(exc)))
            continue
        recipes.append(Recipe(name, path, task, _command_line(text)))
    return recipes


def find_recipe(name: str) -> Path | None:
    """The recipe file for a path or a recipe name, or None if ``name`` is neither.
    Only file names are compared: no recipe is read until it is used."""
    path = Path(name)
    if path.suffix in (".yaml", ".yml"):
        if not path.is_file():
            raise ConfigError(f"recipe file {name} does not exist")
        return path
    paths = _recipe_files().get(name)
    return _first_of(name, paths) if paths else None


def _recipe_files() -> dict[str, list[Path]]:
    """Every recipe file by name, in lookup order: ./recipes, then plugins'."""
    from lorakit.plugins import get_host

    local = [path for folder in recipe_dirs() for path in sorted(folder.glob("*.yaml"))]
    named: dict[str, list[Path]] = {}
    for path in local + get_host().recipe_files:
        same = named.setdefault(path.stem, [])
        if not any(_same_file(path, seen) for seen in same):  # ./recipes may be a plugin's own folder
            same.append(path)
    return named


_warned: set[str] = set()


def _first_of(name: str, paths: list[Path]) -> Path:
    """The file a recipe name stands for (the first); a warning, once a process,
    names the files of the same name that it shadows."""
    chosen, *shadowed = paths
    if shadowed and name not in _warned:
        from lorakit.progress import console, escape

        _warned.add(name)
        others = ", ".join(str(p) for p in shadowed)
        text = f"recipe {name!r}: using {chosen}, which shadows {others} (rename {chosen.name} to use the other)"
        console.print(f"[yellow]warning:[/yellow] {escape(text)}", highlight=False, soft_wrap=True)
    return chosen


def _same_file(one: Path, other: Path) -> bool:
    try:
        return one.samefile(other)
    except OSError:
        return False


def load_run_config(target: str, flags: list[str]) -> RunConfig:
    """Build a RunConfig from a recipe path/name or a bare task name, plus flags.

    One source of defaults, in layers: the config dataclasses, then the
    task's own recipe (the recipe named after the task, e.g. ``caption``),
    then the recipe named by ``target``, then the flags.
    """
    from lorakit.capabilities import CommandLineInputs
    from lorakit.plugins import get_host
    from lorakit.task import options_fields

    pairs = [(key, switch_value(key, value, False) if key == "task" else value) for key, value in parse_flags(flags)]
    values = recipe_values(target)
    task_name = str(dict(pairs).get("task") or values.get("task") or target)
    if task_name == target and target not in get_host().tasks and find_recipe(target) is None:
        raise ConfigError(_unknown_target(target))
    task_class = get_host().task(task_name)
    if task_class.name != target and task_name == values.get("task", task_name):
        task_recipe = find_recipe(task_class.name)  # the task's own settings, under the named recipe
        if task_recipe is not None:
            values = merged(recipe_values(str(task_recipe)), values)
    aliases = task_class.aliases if issubclass(task_class, CommandLineInputs) else {}
    task_options = options_fields(task_class.options_class)
    given = set()
    for key, value in pairs:
        if value is SWITCHED_ON:  # said with the flag as written (--data, not data.path)
            path = resolve_key(aliases.get(key, key), task_options, list(aliases))
            value = switch_value(key, value, _is_switch(path, task_class.options_class))
        given.add(set_value(values, aliases.get(key, key), value, task_options, aliases=list(aliases)))
    config = build(RunConfig, values)
    _warn_without_effect(config, given)
    return config


def _unknown_target(target: str) -> str:
    """What ``lorakit run TARGET`` says when TARGET is neither a task nor a recipe."""
    from lorakit.plugins import get_host

    if (Path(target) / "config.yaml").is_file():  # a run folder: its settings are its config.yaml
        return f"{target} is a run folder, not a task or recipe; pass {Path(target) / 'config.yaml'} for its settings"
    host = get_host()
    tasks = sorted(host.tasks)
    recipes = sorted(r.name for r in list_recipes() if not r.error)
    guess = did_you_mean(target, [*tasks, *recipes])
    broken = [p.name for p in host.plugins.values() if p.error]
    hint = f"; plugins with errors: {', '.join(broken)} (see `lorakit plugins`)" if broken else (
        "; a plugin's task is found through its package's `lorakit` entry point (`lorakit plugins` lists them)"
        if not guess and not Path(target).suffix else "")
    return (f"unknown task or recipe {target!r}{guess}; tasks: {', '.join(tasks) or 'none'}; recipes: "
            f"{', '.join(recipes) or 'none'} (or a recipe file's path){hint}")


def _is_switch(path: list[str], options_class: type) -> bool:
    """Whether the setting at ``path`` is a true/false one."""
    owner = RunConfig if len(path) == 1 else options_class if path[0] == "options" else SECTIONS[path[0]]
    hint = typing.get_type_hints(owner).get(path[-1])
    return hint is bool or bool in typing.get_args(hint)


def _warn_without_effect(config: RunConfig, given: set[tuple[str, ...]]) -> None:
    """A flag the run would silently ignore is said so, naming the setting
    that wins: ``--epochs`` under a ``max_steps`` from a recipe or default."""
    from lorakit.data.files import warn

    if ("train", "epochs") in given and ("train", "max_steps") not in given and config.train.max_steps is not None:
        warn(f"--train.epochs {config.train.epochs} has no effect: train.max_steps {config.train.max_steps} "
             f"(from the {config.task} recipe) ends the run; pass --train.max_steps N for another length, "
             "or --train.max_steps none to train by epochs")


def recipe_values(target: str) -> dict[str, Any]:
    """The raw values of a recipe, or ``{"task": target}`` for a bare task name.
    Relative data paths in a recipe are relative to the recipe file, so a
    recipe runs the same from any folder and from an installed package."""
    path = find_recipe(target)
    if path is None:
        return {"task": target}
    values = _read_yaml(path)
    if isinstance(values.get("data"), str):
        values["data"] = {"path": values["data"]}
    data = values.get("data")
    if isinstance(data, dict):
        for key in DATA_PATHS:
            if isinstance(data.get(key), str) and not Path(data[key]).expanduser().is_absolute():
                data[key] = os.path.normpath(path.resolve().parent / data[key])
    return values


def merged(under: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    """A new dict: ``over`` laid on ``under``, section by section (neither is
    changed, so a task's class-level defaults stay as they are)."""
    out = copy.deepcopy(under)
    for key, value in over.items():
        out[key] = merged(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def parse_flags(flags: list[str]) -> list[tuple[str, Any]]:
    """``["--lora.r", "16", "--dora"]`` -> ``[("lora.r", 16), ("dora", SWITCHED_ON)]``:
    a bare flag is true where the setting is true/false and a mistake elsewhere
    (``config.switch_value``, once the setting's type is known).

    ``--options.NAME`` is the same as ``--NAME`` for a task option."""
    pairs = []
    i = 0
    while i < len(flags):
        token = flags[i]
        if not token.startswith("--") or len(token) == 2:
            raise ConfigError(f"unexpected argument {token!r}: options are written --name value")
        key = token[2:]
        if "=" in key:
            key, raw = key.split("=", 1)
            i += 1
        elif i + 1 < len(flags) and not flags[i + 1].startswith("--"):
            raw = flags[i + 1]
            i += 2
        else:
            pairs.append((key.replace("-", "_"), SWITCHED_ON))
            i += 1
            continue
        pairs.append((key.replace("-", "_"), _parse_value(raw)))
    return pairs


def set_value(values: dict[str, Any], key: str, value: Any, task_options: list[str],
              aliases: list[str] = ()) -> tuple[str, ...]:
    """Put one flag into the raw config dict, resolving short names; ``aliases``
    are the task's own flags, listed when a flag is unknown. Returns the
    field's path (``("train", "epochs")``)."""
    path = resolve_key(key, task_options, aliases)
    node = values
    for part in path[:-1]:
        if not isinstance(node.get(part), dict):
            node[part] = {} if node.get(part) is None else {"path": node[part]}
        node = node[part]
    node[path[-1]] = value
    return tuple(path)


def resolve_key(key: str, task_options: list[str], aliases: list[str] = ()) -> list[str]:
    """Where a flag goes, e.g. ``epochs`` -> ``["train", "epochs"]``."""
    if "." in key:
        section, _, name = key.partition(".")
        if section in SECTIONS or section == "options":
            return [section, name]
        raise ConfigError(f"unknown section in --{key}; sections: {', '.join([*SECTIONS, 'options'])}")
    if key in TOP_LEVEL:
        return [key]
    if key == "data":
        return ["data", "path"]
    owners = [s for s, cls in SECTIONS.items() if key in {f.name for f in dataclasses.fields(cls)}]
    if key in task_options:  # a task option named as a core field (seed) is as ambiguous as two fields
        owners.append("options")
    if len(owners) == 1:
        return [owners[0], key]
    if len(owners) > 1:
        raise ConfigError(f"--{key} is ambiguous: write one of {', '.join(f'--{s}.{key}' for s in owners)}")
    flags = valid_flags(task_options, aliases)
    short = [name for cls in SECTIONS.values() for name in (f.name for f in dataclasses.fields(cls))]
    guess = did_you_mean(key, [*short, *(flag[2:] for flag in flags)], "--")
    raise ConfigError(f"unknown option --{key}{guess}; valid options: {', '.join(flags)}")


def valid_flags(task_options: list[str], aliases: list[str] = ()) -> list[str]:
    flags = [f"--{k}" for k in TOP_LEVEL] + ["--data"] + [f"--{a}" for a in aliases]
    for section, cls in SECTIONS.items():
        flags += [f"--{section}.{f.name}" for f in dataclasses.fields(cls)]
    flags += [f"--{name}" for name in task_options]
    return flags


def _parse_value(raw: str) -> Any:
    if not raw.strip():  # --trigger "": empty text (YAML would read null); unsets an optional setting
        return ""
    try:
        value = yaml.safe_load(raw)
    except yaml.YAMLError:
        return raw
    # YAML 1.1 reads "no"/"on" as booleans, and "what: this" as a mapping:
    # keep such values as text unless they are written as YAML on purpose.
    if isinstance(value, bool) and raw.strip().lower() not in ("true", "false"):
        return raw
    if isinstance(value, dict) and not raw.strip().startswith("{"):
        return raw
    return value


def _read_yaml(path: Path) -> dict[str, Any]:
    """The mapping in recipe ``path``, or one ConfigError naming the file (and line)."""
    return _parse(path, _read_text(path))


def _read_text(path: Path) -> str:
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read recipe {path}: {exc.strerror or exc}") from None
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[:exc.start].count(b"\n") + 1
        raise ConfigError(f"recipe {path}, line {line}: not UTF-8 text (byte 0x{raw[exc.start]:02x}); "
                          f"save the file as UTF-8") from None


def _parse(path: Path, text: str) -> dict[str, Any]:
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"recipe {path}{_yaml_problem(exc, text)}") from None
    if not isinstance(data, dict):
        kinds = {type(None): "is empty", list: "holds a list", str: "holds only text", bool: "holds only a boolean"}
        what = kinds.get(type(data), "holds only a number" if isinstance(data, (int, float)) else "is no mapping")
        raise ConfigError(f"recipe {path} {what}; a recipe is a YAML mapping (task: ..., base: ..., data: ...)")
    return data


def _yaml_problem(exc: yaml.YAMLError, text: str) -> str:
    """``, line N, column C: what is wrong`` on one line, from a YAML error."""
    if isinstance(exc, yaml.MarkedYAMLError):
        mark = exc.problem_mark or exc.context_mark
        where = f", line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = exc.problem or exc.context or "not valid YAML"
        if isinstance(exc, yaml.constructor.ConstructorError) and "constructor for the tag" in problem:
            tag = problem.split("tag ", 1)[1].strip("'").replace("tag:yaml.org,2002:", "!!")
            return (f"{where}: the YAML tag {tag} is not allowed; a recipe is plain data "
                    f"(mappings, lists, text, numbers): remove the tag")
        return f"{where}: {problem}" + (f" ({exc.context})" if exc.context and exc.problem else "")
    if isinstance(exc, yaml.reader.ReaderError):
        line = text[:exc.position].count("\n") + 1
        return f", line {line}: character #x{exc.character:04x} is not allowed in YAML ({exc.reason})"
    return ": " + " ".join(str(exc).split())


def _command_line(text: str) -> str:
    first = text.splitlines()[:1]
    return first[0].lstrip("# ").strip() if first and first[0].startswith("#") else ""
