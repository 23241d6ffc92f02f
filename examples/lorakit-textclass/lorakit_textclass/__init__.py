"""lorakit-textclass: LoRA for text classification, as a third-party lorakit plugin.

It imports only ``lorakit.api`` (the declared plugin API; its tests also use
``lorakit.testing``) and is found through the ``lorakit`` entry-point group.
"""

from pathlib import Path

from lorakit.api import hookimpl


@hookimpl
def register_tasks(register):
    """The ``textclass`` task."""
    from lorakit_textclass.task import TextClassTask

    register(TextClassTask)


@hookimpl
def register_recipes(register):
    """The recipes shipped in this package (``lorakit recipes`` lists them):
    ``textclass`` (the task's recommended settings) and ``textclass-demo``."""
    register(Path(__file__).parent / "recipes")
