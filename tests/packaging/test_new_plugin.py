"""`lorakit new-plugin NAME`: the skeleton installs (pip, editable, in a venv),
is found through its entry point, trains from its own recipe, and passes its
own conformance test as generated."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

from venvs import assert_no_ignored_packages, clean_env, make_venv, run


def lorakit(*args, cwd):
    """The checkout's `lorakit` command; returns the finished process."""
    return subprocess.run([sys.executable, "-m", "lorakit", *map(str, args)], cwd=cwd, env=clean_env(),
                          capture_output=True, text=True, timeout=120)


def core_modules_imported(source: Path) -> set[str]:
    """The lorakit modules ``source`` imports, at any depth (inside functions too)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(source.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
        elif isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
    return {name for name in names if name == "lorakit" or name.startswith("lorakit.")}


def test_the_import_scan_sees_imports_inside_functions(tmp_path):
    source = tmp_path / "task.py"
    source.write_text("from lorakit.api import Task\nimport lorakit_tags\n\n"
                      "def f():\n    from lorakit.runs import run\n    import lorakit\n")
    assert core_modules_imported(source) == {"lorakit.api", "lorakit.runs", "lorakit"}


@pytest.mark.slow
def test_the_skeleton_installs_trains_and_passes_its_own_conformance_test(tmp_path):
    made = lorakit("new-plugin", "tiny-tags", "--out", tmp_path / "plugins", cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    skeleton = tmp_path / "plugins" / "lorakit-tiny-tags"
    package = skeleton / "lorakit_tiny_tags"
    assert (package / "recipes" / "tiny-tags.yaml").read_text().startswith("# lorakit run tiny-tags\n")
    for source in [*package.glob("*.py"), *skeleton.glob("tests/*.py")]:  # the plugin API only
        core_imports = core_modules_imported(source)
        assert core_imports <= {"lorakit.api", "lorakit.testing"}, f"{source.name} imports {core_imports}"

    python = make_venv(tmp_path / "venv")
    installed = run(python, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation", "-e", skeleton)
    assert_no_ignored_packages(installed)
    tasks = run(python, "-m", "lorakit", "tasks", cwd=tmp_path, LORAKIT_LOAD_PLUGINS="tiny-tags").stdout
    assert tasks.startswith("tiny-tags") and "[tiny-tags]" in tasks, tasks

    # The recipe named after the task runs by name, its data path resolved next to it.
    run(python, "-m", "lorakit", "run", "tiny-tags", "--output", tmp_path / "run", "--quiet", cwd=tmp_path,
        LORAKIT_LOAD_PLUGINS="tiny-tags")
    test = json.loads((tmp_path / "run" / "report.json").read_text())["test"]
    assert test["adapter"]["mse"] < 0.5 * test["base"]["mse"], test

    tested = run(python, "-m", "pytest", "-q", "-p", "no:cacheprovider", cwd=skeleton)
    assert "2 passed" in tested.stdout, tested.stdout


@pytest.mark.parametrize("name, rule", [
    ("Tiny_Tags", "kebab-case"),
    ("tiny--tags", "kebab-case"),
    ("9lives", "starting with a letter"),
    ("lorakit-tags", "without the lorakit- prefix"),
    ("caption", "a task or recipe called 'caption' is already installed"),
    ("caption-demo", "a task or recipe called 'caption-demo' is already installed"),  # a recipe: it was written
    ("voice", "a package called lorakit_voice is already installed"),  # it hid the built-in voice plugin
    ("blip", "a package called lorakit_blip is already installed"),
])
def test_a_bad_name_is_refused_with_the_rule_and_nothing_is_written(tmp_path, name, rule):
    refused = lorakit("new-plugin", name, "--out", tmp_path, cwd=tmp_path)
    assert refused.returncode == 2 and rule in refused.stderr, refused.stderr
    assert list(tmp_path.iterdir()) == []


def test_an_existing_folder_is_refused_and_left_as_it_was(tmp_path):
    existing = tmp_path / "lorakit-tiny-tags"
    existing.mkdir()
    (existing / "notes.txt").write_text("mine")
    refused = lorakit("new-plugin", "tiny-tags", "--out", tmp_path, cwd=tmp_path)
    assert refused.returncode == 1 and "already exists" in refused.stderr, refused.stderr
    assert [p.name for p in tmp_path.iterdir()] == ["lorakit-tiny-tags"]  # no half-written temporary folder
    assert [p.name for p in existing.iterdir()] == ["notes.txt"] and (existing / "notes.txt").read_text() == "mine"
