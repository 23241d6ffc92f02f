import subprocess
import sys
from importlib import metadata

import lorakit
from lorakit import plugins
from lorakit.plugins import PluginHost
from lorakit.task import Task


def test_builtin_caption_task_comes_through_the_entry_point():
    host = PluginHost()
    assert "caption" in host.tasks
    info = host.plugins["caption"]
    assert info.error is None and "register_tasks" in info.hooks and info.version


def test_load_plugins_env_narrows(monkeypatch):
    monkeypatch.setenv(plugins.LOAD_ENV, "")
    assert PluginHost().tasks == {}
    monkeypatch.setenv(plugins.LOAD_ENV, "caption")
    assert set(PluginHost().tasks) == {"caption"}


def test_import_error_is_reported_by_name(monkeypatch):
    broken = metadata.EntryPoint(name="broken-one", value="lorakit_no_such_module_xyz", group="lorakit")
    monkeypatch.setattr(plugins, "_selected_entry_points", lambda: [broken, *metadata.entry_points(group="lorakit")])
    host = PluginHost()
    assert "failed to import" in host.plugins["broken-one"].error
    assert "caption" in host.tasks  # the others still load


class _Misspelt:
    @lorakit.hookimpl
    def register_task(self, register):  # missing "s": not a hook
        pass


class _Good:
    class GoodTask(Task):
        name = "good-task"

    @lorakit.hookimpl
    def register_tasks(self, register):
        register(self.GoodTask)


class _WrongContract:
    class OldTask(Task):
        name = "old-task"
        contract_version = "0.3"

    @lorakit.hookimpl
    def register_tasks(self, register):
        register(self.OldTask)


def test_misspelt_hook_and_wrong_contract_fail_loudly_without_breaking_others():
    host = PluginHost(load_entry_points=False)
    misspelt = host.add_plugin(_Misspelt(), "misspelt")
    old = host.add_plugin(_WrongContract(), "old")
    good = host.add_plugin(_Good(), "good")
    assert "register_task" in misspelt.error
    assert "old-task" in old.error and "0.3" in old.error and lorakit.CONTRACT_VERSION in old.error
    assert good.error is None and list(host.tasks) == ["good-task"]


def test_a_metric_direction_other_than_max_or_min_is_refused_at_load():
    # Best checkpoints read anything but "min" as higher-is-better and reports anything but "max" as lower.
    class Maximized(Task):
        name = "maximized"
        metrics = {"accuracy": "maximize"}

    class Plugin:
        @lorakit.hookimpl
        def register_tasks(self, register):
            register(Maximized)

    host = PluginHost(load_entry_points=False)
    info = host.add_plugin(Plugin(), "maximizing")
    assert info.error == ("plugin 'maximizing': task 'maximized': metrics directions must be 'max' or 'min' (which is "
                          "better), got {'accuracy': 'maximize'}")
    assert "maximized" not in host.tasks


def test_unknown_task_lists_known_ones():
    host = PluginHost(load_entry_points=False)
    host.add_plugin(_Good(), "good")
    try:
        host.task("nope")
    except lorakit.errors.PluginError as exc:
        assert "good-task" in str(exc)
    else:
        raise AssertionError("unknown task accepted")


def test_listing_tasks_does_not_import_torch():
    code = "import sys; from lorakit.cli import main; sys.argv=['lorakit','tasks']\ntry: main()\nexcept SystemExit: pass\nprint('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert "caption" in out and out.strip().endswith("False")


class _ContractOnePlugin:
    class LeftoverTask(Task):
        name = "leftover-task"
        default_targets = ["q", "v"]
        input_flags = ("image",)

        def training_step(self, base, model, batch):
            yield "main", None

    @lorakit.hookimpl
    def register_tasks(self, register):
        register(self.LeftoverTask)


def test_contract_1_leftovers_are_refused_naming_their_replacement():
    host = PluginHost(load_entry_points=False)
    info = host.add_plugin(_ContractOnePlugin(), "leftovers")
    assert "leftover-task" not in host.tasks
    assert "default_targets: rename it lora_targets" in info.error
    assert "input_flags: inherit lorakit.api.CommandLineInputs" in info.error
    assert "training_step: inherit lorakit.api.SeveralOptimizers" in info.error


def test_a_capability_mixin_makes_the_same_names_valid():
    from lorakit.api import CommandLineInputs

    class Declared(Task, CommandLineInputs):
        name = "declared-task"
        input_flags = ("image",)

    assert plugins.contract_1_leftovers(Declared) == []


def test_using_host_swaps_the_process_host_for_a_block():
    private = PluginHost(load_entry_points=False)
    process = plugins.get_host()
    with plugins.using_host(private):
        assert plugins.get_host() is private
    assert plugins.get_host() is process


def test_every_installed_plugin_loads_without_errors():
    errors = {info.name: info.error for info in PluginHost().errors()}
    assert not errors


class _NeedsMissingLibrary:
    class NeedyTask(Task):
        name = "needy-task"

    @lorakit.hookimpl
    def register_tasks(self, register):
        from lorakit.api import require_modules

        require_modules({"json": "json", "lorakit_no_such_lib_xyz": "no-such-lib"}, "pip install 'lorakit-needy[all]'")
        register(self.NeedyTask)


def test_a_plugin_missing_its_extra_is_reported_with_the_install_command():
    host = PluginHost(load_entry_points=False)
    info = host.add_plugin(_NeedsMissingLibrary(), "needy")
    assert info.error == "needs no-such-lib, which is not installed: pip install 'lorakit-needy[all]'"
    assert "needy-task" not in host.tasks
