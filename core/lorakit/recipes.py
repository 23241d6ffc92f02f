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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from lorakit.config import SECTIONS, RunConfig, build
from lorakit.errors import ConfigError

TOP_LEVEL = ("task", "base", "base_dtype", "output")
#: Fields of a recipe's data section that hold paths (resolved against the recipe's folder).
DATA_PATHS = ("path", "eval_path", "retain")


@dataclass
class Recipe:
    """A recipe file found on disk."""

    name: str
    path: Path
    task: str
    command: str


def recipe_dirs() -> list[Path]:
    """Where a user's own named recipes are looked up: ./recipes."""
    local = Path.cwd() / "recipes"
    return [local] if local.is_dir() else []


def list_recipes() -> list[Recipe]:
    """Recipes of ./recipes, then those plugins ship; the first of a name wins."""
    from lorakit.plugins import get_host

    files = [path for folder in recipe_dirs() for path in sorted(folder.glob("*.yaml"))]
    recipes = {}
    for path in files + get_host().recipe_files:
        if path.stem in recipes:
            continue
        data = _read_yaml(path)
        recipes[path.stem] = Recipe(path.stem, path, str(data.get("task", "")), _command_line(path))
    return list(recipes.values())


def find_recipe(name: str) -> Path | None:
    """The recipe file for a path or a recipe name, or None if ``name`` is neither."""
    path = Path(name)
    if path.suffix in (".yaml", ".yml"):
        if not path.is_file():
            raise ConfigError(f"recipe file {name} does not exist")
        return path
    for recipe in list_recipes():
        if recipe.name == name:
            return recipe.path
    return None


def load_run_config(target: str, flags: list[str]) -> RunConfig:
    """Build a RunConfig from a recipe path/name or a bare task name, plus flags.

    One source of defaults, in layers: the config dataclasses, then the
    task's own recipe (the recipe named after the task, e.g. ``caption``),
    then the recipe named by ``target``, then the flags.
    """
    from lorakit.capabilities import CommandLineInputs
    from lorakit.plugins import get_host
    from lorakit.task import options_fields

    pairs = parse_flags(flags)
    values = recipe_values(target)
    task_name = str(dict(pairs).get("task") or values.get("task") or target)
    task_class = get_host().task(task_name)
    if task_class.name != target and task_name == values.get("task", task_name):
        task_recipe = find_recipe(task_class.name)  # the task's own settings, under the named recipe
        if task_recipe is not None:
            values = merged(recipe_values(str(task_recipe)), values)
    aliases = task_class.aliases if issubclass(task_class, CommandLineInputs) else {}
    task_options = options_fields(task_class.options_class)
    for key, value in pairs:
        set_value(values, aliases.get(key, key), value, task_options, aliases=list(aliases))
    return build(RunConfig, values)


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
    """``["--lora.r", "16", "--dora"]`` -> ``[("lora.r", 16), ("dora", True)]``.

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
            raw = "true"
            i += 1
        pairs.append((key.replace("-", "_"), _parse_value(raw)))
    return pairs


def set_value(values: dict[str, Any], key: str, value: Any, task_options: list[str], aliases: list[str] = ()) -> None:
    """Put one flag into the raw config dict, resolving short names; ``aliases``
    are the task's own flags, listed when a flag is unknown."""
    path = resolve_key(key, task_options, aliases)
    node = values
    for part in path[:-1]:
        if not isinstance(node.get(part), dict):
            node[part] = {} if node.get(part) is None else {"path": node[part]}
        node = node[part]
    node[path[-1]] = value


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
    if len(owners) == 1:
        return [owners[0], key]
    if key in task_options:
        return ["options", key]
    if len(owners) > 1:
        raise ConfigError(f"--{key} is ambiguous: write one of {', '.join(f'--{s}.{key}' for s in owners)}")
    raise ConfigError(f"unknown option --{key}; valid options: {', '.join(valid_flags(task_options, aliases))}")


def valid_flags(task_options: list[str], aliases: list[str] = ()) -> list[str]:
    flags = [f"--{k}" for k in TOP_LEVEL] + ["--data"] + [f"--{a}" for a in aliases]
    for section, cls in SECTIONS.items():
        flags += [f"--{section}.{f.name}" for f in dataclasses.fields(cls)]
    flags += [f"--{name}" for name in task_options]
    return flags


def _parse_value(raw: str) -> Any:
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
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"cannot read recipe {path}: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"recipe {path} must be a YAML mapping (task: ..., base: ..., data: ...)")
    return data


def _command_line(path: Path) -> str:
    first = path.read_text(encoding="utf-8").splitlines()[:1]
    return first[0].lstrip("# ").strip() if first and first[0].startswith("#") else ""
