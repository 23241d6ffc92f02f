"""``lorakit new-plugin NAME``: write a plugin package that installs and passes
the conformance kit as it is.

The files are templates (``lorakit/templates/plugin``, package data) with
``{{word}}`` placeholders; the example task is a tiny MLP regression whose
sample data is written here. The package appears whole or not at all: it is
written to a temporary folder beside the target and renamed.
"""

from __future__ import annotations

import importlib.util
import json
import random
import re
from importlib import resources
from pathlib import Path

from lorakit.atomic import atomic_dir
from lorakit.errors import ConfigError, OutputError

NAME = re.compile(r"^[a-z][a-z0-9]*(-[a-z0-9]+)*$")
NAME_RULE = "kebab-case: lowercase letters and digits in words joined by single hyphens, starting with a letter"
PLACEHOLDER = re.compile(r"\{\{([a-z_]+)\}\}")

#: Template -> where it goes in the package folder (``str.format`` with the placeholders).
FILES = {
    "pyproject.toml.tmpl": "pyproject.toml",
    "README.md.tmpl": "README.md",
    "__init__.py.tmpl": "{package}/__init__.py",
    "task.py.tmpl": "{package}/task.py",
    "model.py.tmpl": "{package}/model.py",
    "recipe.yaml.tmpl": "{package}/recipes/{name}.yaml",
    "test_task.py.tmpl": "tests/test_{module}.py",
}
#: The demo data's target: y = WEIGHTS . x + BIAS, which LoRA on the demo MLP can learn.
WEIGHTS, BIAS = (0.6, -0.4, 0.3, 0.2), 0.1


def new_plugin(name: str, out: str | Path = ".", taken: set[str] | frozenset[str] = frozenset()) -> Path:
    """Write ``OUT/lorakit-NAME/`` and return it. ``taken``: task and recipe
    names already installed (a second plugin registering one is refused)."""
    check_name(name, taken)
    target = Path(out) / f"lorakit-{name}"
    if target.exists() or target.is_symlink():
        raise OutputError(f"{target} already exists; remove it or choose another --out folder or name")
    values = placeholders(name)
    with atomic_dir(target) as tmp:
        for template, relative in FILES.items():
            _write(tmp / relative.format(**values), render(template, values))
        write_demo_data(tmp / values["package"] / "samples" / "demo" / "data.jsonl")
    return target


def check_name(name: str, taken: set[str] | frozenset[str] = frozenset()) -> None:
    """Refuse a name that cannot be a task name, a distribution and a package at once."""
    if not NAME.match(name):
        raise ConfigError(f"plugin name {name!r} must be {NAME_RULE} (e.g. audio-tags)")
    if name == "lorakit" or name.startswith("lorakit-"):
        raise ConfigError(f"give the plugin name without the lorakit- prefix (e.g. {name.removeprefix('lorakit-')!r}): "
                          "the package is called lorakit-NAME")
    if name in taken:
        raise ConfigError(f"a task or recipe called {name!r} is already installed (`lorakit tasks`, `lorakit "
                          "recipes`): `lorakit run` could not tell them apart; choose another name")
    package = f"lorakit_{name.replace('-', '_')}"
    if importlib.util.find_spec(package) is not None:  # lorakit_voice, lorakit_blip: a built-in plugin's own
        raise ConfigError(f"a package called {package} is already installed: one of the two would hide the "
                          "other; choose another name")


def placeholders(name: str) -> dict[str, str]:
    """The values of the templates' ``{{word}}`` placeholders for plugin ``name``."""
    import lorakit
    from lorakit.task import CONTRACT_VERSION

    words = "".join(part.capitalize() for part in name.split("-"))
    stem = words.removesuffix("Task") or words
    module = name.replace("-", "_")
    return {
        "name": name,
        "module": module,
        "package": f"lorakit_{module}",
        "dist": f"lorakit-{name}",
        "class": f"{stem}Task",
        "options_class": f"{stem}Options",
        "lorakit_version": lorakit.__version__,
        "contract": CONTRACT_VERSION,
    }


def render(template: str, values: dict[str, str]) -> str:
    """A template with every ``{{word}}`` replaced (f-string braces such as
    ``{{"x": ...}}`` are not placeholders and stay as they are)."""
    text = resources.files("lorakit").joinpath("templates", "plugin", template).read_text(encoding="utf-8")
    return PLACEHOLDER.sub(lambda match: values[match.group(1)], text)


def write_demo_data(path: Path, examples: int = 64, seed: int = 0) -> None:
    """``{"x": [4 numbers], "y": number}`` lines from a fixed linear target."""
    rng = random.Random(seed)
    lines = []
    for _ in range(examples):
        x = [round(rng.uniform(-1, 1), 4) for _ in WEIGHTS]
        y = sum(w * v for w, v in zip(WEIGHTS, x)) + BIAS
        lines.append(json.dumps({"x": x, "y": round(y, 4)}))
    _write(path, "\n".join(lines) + "\n")


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
