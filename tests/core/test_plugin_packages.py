"""Installed plugin packages, as pip leaves them (a module + a dist-info with a
`lorakit` entry point), found by a real `lorakit` process."""

import os
import subprocess
import sys
import textwrap

import pytest

PLUGINS = {
    "broken_import": ("lorakit-broken-import", "import no_such_dependency_xyz\n"),
    "old_contract": ("lorakit-old-contract", """
        import lorakit

        class OldTask(lorakit.Task):
            name = "old-task"
            contract_version = "0.9"

        @lorakit.hookimpl
        def register_tasks(register):
            register(OldTask)
    """),
    "misspelt_hook": ("lorakit-misspelt-hook", """
        import lorakit

        @lorakit.hookimpl
        def register_task(register):
            pass
    """),
    "task_class": ("lorakit-task-class", """
        import lorakit

        class ClassTask(lorakit.Task):  # the entry point names this module; its hook is missing
            name = "class-task"
    """),
    "extras": ("lorakit-extras", """
        from pathlib import Path

        import click
        import lorakit

        @lorakit.hookimpl
        def register_commands(cli):
            @cli.command()
            def hello():
                "Say hello from a plugin."
                click.echo("hello from a plugin command")

        @lorakit.hookimpl
        def register_recipes(register):
            register(Path(__file__).parent / "recipes")
    """),
}


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    root = tmp_path_factory.mktemp("site")
    for module, (dist, code) in PLUGINS.items():
        (root / module).mkdir()
        (root / module / "__init__.py").write_text(textwrap.dedent(code))
        info = root / f"{dist.replace('-', '_')}-0.3.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 0.3\n")
        (info / "entry_points.txt").write_text(f"[lorakit]\n{module.replace('_', '-')} = {module}\n")
    (root / "extras" / "recipes").mkdir()
    (root / "extras" / "recipes" / "extras-demo.yaml").write_text("# lorakit run extras-demo\ntask: caption\ndata: x\n")
    return root


def lorakit(site, *args, **env):
    environment = {**os.environ, "PYTHONPATH": str(site), **env}
    return subprocess.run([sys.executable, "-m", "lorakit", *args], capture_output=True, text=True, env=environment, timeout=120)


def test_broken_plugins_are_reported_by_name_and_the_rest_works(site):
    result = lorakit(site, "plugins")
    assert result.returncode == 1, result.stderr  # listed, and a failure for a CI step that checks plugins
    lines = {line.split()[0]: line for line in result.stdout.splitlines()}
    assert "failed to import" in lines["broken-import"] and "no_such_dependency_xyz" in lines["broken-import"]
    assert f"(at {site / 'broken_import' / '__init__.py'}:1)" in lines["broken-import"]  # where, for its author
    assert "0.9" in lines["old-contract"] and "old-task" in lines["old-contract"]
    assert "register_task" in lines["misspelt-hook"] and "ERROR" in lines["misspelt-hook"]
    assert "(did you mean register_tasks?)" in lines["misspelt-hook"]
    assert "implements no lorakit hook; the entry point must name the module holding the @lorakit.hookimpl" \
        in lines["task-class"]
    assert "register_commands" in lines["extras"] and "ERROR" not in lines["extras"]
    assert "tasks: caption" in lines["caption"]
    tasks = lorakit(site, "tasks")
    assert tasks.returncode == 0 and tasks.stdout.startswith("caption")
    assert "old-task" not in tasks.stdout


def test_plugins_add_commands_and_recipes(site):
    assert lorakit(site, "hello").stdout.strip() == "hello from a plugin command"
    recipes = lorakit(site, "recipes").stdout
    assert "extras-demo" in recipes and "caption-demo" in recipes


def test_load_plugins_env_narrows_to_named_plugins(site):
    result = lorakit(site, "plugins", LORAKIT_LOAD_PLUGINS="caption,lorakit-extras")
    names = [line.split()[0] for line in result.stdout.splitlines()]
    assert sorted(names) == ["caption", "extras"]
