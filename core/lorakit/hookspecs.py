"""Hook declarations. Hooks are for discovery only: the work is done by Task methods.

A hookspec may gain arguments, never lose or rename one; plugins call nothing
here, they implement these names with ``@lorakit.hookimpl``.
"""

import pluggy

hookspec = pluggy.HookspecMarker("lorakit")

#: Marks a plugin's hook implementations: ``@hookimpl`` (from ``lorakit.api``).
hookimpl = pluggy.HookimplMarker("lorakit")


@hookspec
def register_tasks(register):
    """Register tasks: call ``register(TaskSubclass)`` once per task."""


@hookspec
def register_commands(cli):
    """Add commands to the ``lorakit`` click group ``cli`` (``@cli.command()``)."""


@hookspec
def register_recipes(register):
    """Ship recipes: call ``register(path)`` with a recipe file or a folder of them."""
