"""lorakit-textclass: LoRA for text classification, as a third-party lorakit plugin.

It uses only lorakit's public API (``lorakit.Task``, ``lorakit.hookimpl``,
``lorakit.errors``) and is found through the ``lorakit`` entry-point group.
"""

from pathlib import Path

from lorakit import hookimpl


@hookimpl
def register_tasks(register):
    """The ``textclass`` task."""
    from lorakit_textclass.task import TextClassTask

    register(TextClassTask)


@hookimpl
def register_recipes(register):
    """The recipes shipped in this package (``lorakit recipes`` lists them)."""
    register(Path(__file__).parent / "recipes")
