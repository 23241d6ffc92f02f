"""Bad recipe files: each is one error naming the file (and line), raised only
when that recipe is used; listing shows it as broken; a local recipe that
shadows another of the same name is used, with one warning naming both."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from lorakit import recipes, runs
from lorakit.errors import ConfigError
from lorakit.recipes import find_recipe, list_recipes

from cli_failure import fails_cleanly

BROKEN = {  # file bytes -> what the one-line error says (besides the file's path)
    b"# lorakit run bad\ntask: toy\nlora: {r: 4\n": "line 4",
    b"# lorakit run bad\ntask: toy\ndata: caf\xe9s\n": "line 3: not UTF-8 text (byte 0xe9)",
    b"# lorakit run bad\n- task\n- toy\n": "holds a list; a recipe is a YAML mapping",
    b"# lorakit run bad\n": "is empty",
    b"task: !!python/object/apply:os.system [echo pwned]\n": "line 1, column 7: the YAML tag !!python/object/apply:os.system is not allowed",
    b"task: toy\ndata: \x07\n": "line 2: character #x0007 is not allowed",
}


@pytest.fixture
def local_recipes(tmp_path, monkeypatch, toy_host):
    """A working folder whose ./recipes holds good.yaml and bad.yaml (filled in by the test)."""
    folder = tmp_path / "recipes"
    folder.mkdir()
    (folder / "good.yaml").write_text("# lorakit run good\n" + yaml.safe_dump({"task": "toy", "data": "d"}))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(recipes, "_warned", set())
    return folder


@pytest.mark.parametrize("content, says", BROKEN.items(), ids=["syntax", "utf8", "list", "empty", "tag", "control"])
def test_a_broken_recipe_fails_only_when_used_and_is_named(local_recipes, content, says):
    bad = local_recipes / "bad.yaml"
    bad.write_bytes(content)
    assert runs.load_config("good", []).data.path == str(local_recipes / "d")  # another recipe still runs
    assert runs.load_config("toy", ["--data", "x"]).task == "toy"  # so does a bare task
    with pytest.raises(ConfigError) as error:
        runs.load_config("bad", [])
    message = str(error.value)
    assert str(bad) in message and says in message and "\n" not in message, message
    with pytest.raises(ConfigError, match=re.escape(says)):
        runs.load_config(str(bad), [])

    listed = {r.name: r for r in list_recipes()}
    assert listed["good"].task == "toy" and not listed["good"].error
    assert listed["bad"].task == "(broken)" and listed["bad"].error == message
    assert listed["bad"].command == f"error: {message}"  # what `lorakit recipes` shows


def test_an_unreadable_recipe_is_named(local_recipes):
    (local_recipes / "bad.yaml").mkdir()  # a folder where a file is expected
    with pytest.raises(ConfigError, match="cannot read recipe .*bad.yaml"):
        runs.load_config("bad", [])
    assert runs.load_config("good", []).task == "toy"


def test_a_local_recipe_shadows_a_plugin_one_with_one_warning(local_recipes, toy_host, monkeypatch, capsys):
    shipped = local_recipes.parent / "plugin" / "toy.yaml"
    shipped.parent.mkdir()
    shipped.write_text("# lorakit run toy\ntask: toy\ntrain: {epochs: 7}\n")
    mine = local_recipes / "toy.yaml"
    mine.write_text("# lorakit run toy\ntask: toy\ntrain: {epochs: 2}\n")
    monkeypatch.setattr(toy_host, "recipe_files", [*toy_host.recipe_files, shipped])

    assert find_recipe("toy") == mine
    assert runs.load_config("toy", []).train.epochs == 2  # the local one wins: that is how users override
    assert runs.load_config("good", []).train.epochs == 2  # ... also as the task's defaults layer
    list_recipes()
    warnings = [line for line in capsys.readouterr().err.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1, warnings
    assert str(mine) in warnings[0] and str(shipped) in warnings[0] and "shadows" in warnings[0]


def test_the_same_file_found_twice_is_no_shadow(tmp_path, toy_host, monkeypatch, capsys):
    """Running from a plugin's folder: its ./recipes are the files it ships."""
    shipped = tmp_path / "recipes" / "toy.yaml"
    shipped.parent.mkdir()
    shipped.write_text("# lorakit run toy\ntask: toy\n")
    monkeypatch.setattr(toy_host, "recipe_files", [*toy_host.recipe_files, shipped])
    monkeypatch.setattr(recipes, "_warned", set())
    monkeypatch.chdir(tmp_path)
    assert Path(find_recipe("toy")).samefile(shipped)
    assert "warning" not in capsys.readouterr().err


def test_cli_names_the_broken_recipe_and_still_lists_the_others(tmp_path):
    """`lorakit recipes` lists a broken file as broken and a shadowing one with
    one warning; `lorakit run` of the broken one is one error with its line."""
    folder = tmp_path / "recipes"
    folder.mkdir()
    (folder / "bad.yaml").write_text("# lorakit run bad\ntask: voice-clone\nlora: {r: 4\n")
    (folder / "voice-demo.yaml").write_text("# lorakit run voice-demo --mine\ntask: voice-clone\n")
    fails_cleanly("run", "bad", names=(str(folder / "bad.yaml"), "line 4"), cwd=tmp_path, timeout=60)

    done = subprocess.run([sys.executable, "-m", "lorakit", "recipes"], capture_output=True, text=True,
                          cwd=tmp_path, timeout=60, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr
    lines = {line.split()[0]: line for line in done.stdout.splitlines() if line.strip()}
    assert "(broken)" in lines["bad"] and "line 4" in lines["bad"]
    assert "lorakit run voice-demo --mine" in lines["voice-demo"] and "caption-demo" in lines
    warnings = [line for line in done.stderr.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1 and str(folder / "voice-demo.yaml") in warnings[0], done.stderr
    assert "lorakit_voice" in warnings[0]  # the shipped file it shadows
