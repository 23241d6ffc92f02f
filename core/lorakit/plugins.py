"""The plugin host: finds plugins through the ``lorakit`` entry-point group.

A plugin that fails to import, implements an unknown hook, or registers a
broken task is recorded with its error and left out; the other plugins and the
CLI keep working. ``LORAKIT_LOAD_PLUGINS`` (comma-separated entry-point or
distribution names; empty for none) narrows which plugins are loaded.
"""

from __future__ import annotations

import contextlib
import functools
import os
import re
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any, Iterator

import pluggy

from lorakit import hookspecs
from lorakit.capabilities import CommandLineInputs, MergedExport, SeveralOptimizers, WritesSamples
from lorakit.errors import PluginError, did_you_mean
from lorakit.task import CONTRACT_VERSION, Task

ENTRY_POINT_GROUP = "lorakit"
LOAD_ENV = "LORAKIT_LOAD_PLUGINS"
TASK_NAME = re.compile(r"^[a-z][a-z0-9]*(-[a-z0-9]+)*$")


@dataclass
class PluginInfo:
    """What ``lorakit plugins`` shows about one plugin."""

    name: str
    version: str = ""
    hooks: list[str] = field(default_factory=list)
    tasks: list[str] = field(default_factory=list)
    error: str | None = None


class PluginHost:
    """Loads plugins, collects their tasks and keeps the errors of broken ones."""

    def __init__(self, load_entry_points: bool = True):
        self.pm = pluggy.PluginManager("lorakit")
        self.pm.add_hookspecs(hookspecs)
        self.plugins: dict[str, PluginInfo] = {}
        self.tasks: dict[str, type[Task]] = {}
        self.recipe_files: list[Path] = []
        if load_entry_points:
            for ep in _selected_entry_points():
                self._load_entry_point(ep)

    # -- loading --------------------------------------------------------------

    def add_plugin(self, plugin: Any, name: str, version: str = "") -> PluginInfo:
        """Register a plugin object (module or instance) and collect its tasks;
        errors are recorded on the returned PluginInfo, not raised."""
        if name in self.plugins:
            return self.plugins[name]
        info = PluginInfo(name=name, version=version)
        self.plugins[name] = info
        try:
            self.pm.register(plugin, name=name)
            self.pm.check_pending()
        except pluggy.PluginValidationError as exc:
            if self.pm.is_registered(plugin):
                self.pm.unregister(plugin)
            info.error = f"invalid hook implementation: {exc}{self._hook_guess(str(exc))}"
            return info
        info.hooks = sorted(caller.name for caller in self.pm.get_hookcallers(plugin) or [])
        if not info.hooks:  # an entry point naming the Task class, or a module without @hookimpl functions
            info.error = (f"{plugin!r} implements no lorakit hook; the entry point must name the module holding the "
                          "@lorakit.hookimpl functions (register_tasks, register_recipes...), e.g. "
                          "my-task = \"lorakit_my_task\"")
            self.pm.unregister(plugin)
            return info
        self._collect_tasks(plugin, info)
        self._collect_recipes(plugin, info)
        return info

    def _hook_guess(self, message: str) -> str:
        """`` (did you mean register_tasks?)`` for pluggy's "unknown hook 'register_task'"."""
        unknown = re.search(r"unknown hook '(\w+)'", message)
        # The specified hooks (pluggy marks them), not the module's imports nor the unknown hook itself.
        hooks = [name for name in dir(hookspecs) if hasattr(getattr(hookspecs, name), "lorakit_spec")]
        return did_you_mean(unknown.group(1), hooks) if unknown else ""

    def add_task(self, task_class: type[Task], plugin: str = "(added directly)") -> None:
        """Register a task class without a plugin (tests, ``lorakit.testing``)."""
        check_task_class(task_class, plugin)
        if self.tasks.get(task_class.name, task_class) is not task_class:
            raise PluginError(f"{plugin}: task {task_class.name!r} is already registered by another plugin")
        self.tasks[task_class.name] = task_class

    def _load_entry_point(self, ep: metadata.EntryPoint) -> None:
        version = ep.dist.version if ep.dist is not None else ""
        try:
            plugin = ep.load()
        except Exception as exc:  # any import failure of third-party code is reported, not raised
            self.plugins[ep.name] = PluginInfo(ep.name, version, error=f"failed to import: {type(exc).__name__}: "
                                                                        f"{exc}{_raised_at(exc)}")
            return
        self.add_plugin(plugin, ep.name, version)

    def _collect_tasks(self, plugin: Any, info: PluginInfo) -> None:
        for impl in self.pm.hook.register_tasks.get_hookimpls():
            if impl.plugin is not plugin:
                continue
            try:
                impl.function(register=functools.partial(self._register_task, info))
            except PluginError as exc:
                info.error = str(exc)
            except Exception as exc:  # a plugin's own bug must not break the host
                info.error = f"register_tasks failed: {type(exc).__name__}: {exc}{_raised_at(exc)}"

    def _collect_recipes(self, plugin: Any, info: PluginInfo) -> None:
        def register(path: str | Path) -> None:
            path = Path(path)
            if not path.exists():
                raise PluginError(f"plugin {info.name!r} registered recipe path {path}, which does not exist")
            self.recipe_files += sorted(path.glob("*.yaml")) if path.is_dir() else [path]

        for impl in self.pm.hook.register_recipes.get_hookimpls():
            if impl.plugin is not plugin:
                continue
            try:
                impl.function(register=register)
            except PluginError as exc:
                info.error = str(exc)
            except Exception as exc:  # a plugin's own bug must not break the host
                info.error = f"register_recipes failed: {type(exc).__name__}: {exc}{_raised_at(exc)}"

    def _register_task(self, info: PluginInfo, task_class: type[Task]) -> None:
        check_task_class(task_class, info.name)
        if task_class.name in self.tasks:
            raise PluginError(f"plugin {info.name!r}: task {task_class.name!r} is already registered by another plugin")
        self.tasks[task_class.name] = task_class
        info.tasks.append(task_class.name)

    # -- lookups --------------------------------------------------------------

    def task(self, name: str) -> type[Task]:
        """The task class called ``name``, or a PluginError listing the known ones."""
        if name in self.tasks:
            return self.tasks[name]
        known = ", ".join(sorted(self.tasks)) or "none (no plugin is loaded)"
        broken = [p for p in self.plugins.values() if p.error]
        hint = f"; plugins with errors: {', '.join(p.name for p in broken)} (see `lorakit plugins`)" if broken else ""
        raise PluginError(f"unknown task {name!r}; known tasks: {known}{hint}")

    def errors(self) -> list[PluginInfo]:
        return [p for p in self.plugins.values() if p.error]


def _raised_at(exc: BaseException) -> str:
    """`` (at task.py:12)``: where a plugin's own code raised, for its author
    (a SyntaxError names its line itself)."""
    import traceback

    frames = traceback.extract_tb(exc.__traceback__)
    return f" (at {frames[-1].filename}:{frames[-1].lineno})" if frames and not isinstance(exc, SyntaxError) else ""


def check_task_class(task_class: Any, plugin_name: str) -> None:
    """Refuse a task that does not meet the contract, naming plugin and fix."""
    if not (isinstance(task_class, type) and issubclass(task_class, Task)):
        raise PluginError(f"plugin {plugin_name!r} registered {task_class!r}, which is not a lorakit.Task subclass")
    if not TASK_NAME.match(task_class.name or ""):
        raise PluginError(f"plugin {plugin_name!r}: task name {task_class.name!r} must be kebab-case, e.g. 'voice-clone'")
    wanted = str(task_class.contract_version).split(".")[0]
    have = CONTRACT_VERSION.split(".")[0]
    if wanted != have:
        raise PluginError(
            f"plugin {plugin_name!r}: task {task_class.name!r} was written for task contract "
            f"{task_class.contract_version}, this lorakit provides {CONTRACT_VERSION}; "
            "install a version of the plugin made for this lorakit"
        )
    leftovers = contract_1_leftovers(task_class)
    if leftovers:
        raise PluginError(
            f"plugin {plugin_name!r}: task {task_class.name!r} still has parts of task contract 1 that "
            f"contract {CONTRACT_VERSION} no longer calls: {'; '.join(leftovers)}"
        )
    for attribute in ("metrics", "optional_metrics"):  # read by best checkpoints, early stops and reports alike
        declared = getattr(task_class, attribute)
        if not isinstance(declared, dict):
            raise PluginError(f"plugin {plugin_name!r}: task {task_class.name!r}: {attribute} must be a dict of "
                              "name -> 'max' or 'min'")
        bad = {name: way for name, way in declared.items() if way not in ("max", "min")}
        if bad:
            raise PluginError(f"plugin {plugin_name!r}: task {task_class.name!r}: {attribute} directions must be "
                              f"'max' or 'min' (which is better), got {bad}")


#: Contract-1 attributes that are gone, and what replaced each.
REMOVED = {
    "defaults": "ship a recipe named after the task instead (recipes/<task>.yaml, registered with register_recipes)",
    "default_targets": "rename it lora_targets (a class attribute)",
    "default_modules_to_save": "rename it modules_to_save (a class attribute), or return the modules from prepare_base",
    "summarize_data": "put the summary into the Data(examples, summary) that load_data returns",
}

#: Contract-1 methods and attributes that moved into a capability mixin.
MOVED = {
    "prepare_training": SeveralOptimizers,
    "optimizer_groups": SeveralOptimizers,
    "training_step": SeveralOptimizers,
    "aliases": CommandLineInputs,
    "input_flags": CommandLineInputs,
    "prediction_inputs": CommandLineInputs,
    "write_samples": WritesSamples,
    "save_merged": MergedExport,
}


def contract_1_leftovers(task_class: type[Task]) -> list[str]:
    """What a task class still defines of contract 1, each with its fix. A
    leftover would be silently ignored (never called), so it is refused."""
    found = [f"{name}: {fix}" for name, fix in REMOVED.items() if hasattr(task_class, name)]
    for name, mixin in MOVED.items():
        if hasattr(task_class, name) and not issubclass(task_class, mixin):
            found.append(f"{name}: inherit lorakit.api.{mixin.__name__} to declare that capability "
                         f"(class {task_class.__name__}(Task, {mixin.__name__}))")
    if callable(getattr(task_class, "lora_targets", None)):
        found.append("lora_targets() is a method: make it a class attribute (a list of module name suffixes "
                     "or one regex)")
    if callable(getattr(task_class, "modules_to_save", None)):
        found.append("modules_to_save() is a method: make it a class attribute, or choose the modules from the "
                     "data in prepare_base(base, data) and return them")
    return found


def _selected_entry_points() -> list[metadata.EntryPoint]:
    eps = list(metadata.entry_points(group=ENTRY_POINT_GROUP))
    wanted = os.environ.get(LOAD_ENV)
    if wanted is None:
        return eps
    names = {n.strip() for n in wanted.split(",") if n.strip()}
    return [ep for ep in eps if ep.name in names or (ep.dist is not None and ep.dist.name in names)]


#: Hosts put in place of the process-wide one by ``using_host`` (innermost last).
_swapped: list[PluginHost] = []


def get_host() -> PluginHost:
    """The process-wide plugin host, loaded on first use (or the host that
    ``using_host`` put in its place)."""
    return _swapped[-1] if _swapped else _process_host()


@functools.lru_cache(maxsize=1)
def _process_host() -> PluginHost:
    return PluginHost()


@contextlib.contextmanager
def using_host(host: PluginHost) -> Iterator[PluginHost]:
    """Let ``get_host()`` return ``host`` for a block: the conformance kit
    checks a task on a private host, so an installed copy of the same plugin
    (or another task of the same name) cannot get in the way."""
    _swapped.append(host)
    try:
        yield host
    finally:
        _swapped.remove(host)
