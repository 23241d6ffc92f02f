"""lorakit's ``vqa`` task: LoRA adapters for BLIP visual question answering.

Registered through the ``lorakit`` entry-point group like any third-party
plugin, with the plugin API only (``lorakit.api``), and with a ``vqa-import``
command for the VQA v2 file pair. Importing this package stays instant: torch
and transformers are imported inside the task's methods, the importer inside
its command.
"""

from pathlib import Path

from lorakit.api import hookimpl, require_modules


@hookimpl
def register_tasks(register):
    """Register the ``vqa`` task."""
    require_modules({"torchvision": "torchvision"}, "pip install 'lorakit[vqa]'")
    from lorakit_vqa.task import VqaTask

    register(VqaTask)


@hookimpl
def register_commands(cli):
    """Add ``lorakit vqa-import``."""
    from lorakit_vqa.commands import vqa_import

    cli.add_command(vqa_import)


@hookimpl
def register_recipes(register):
    """``vqa`` (the task's recommended settings) and ``vqa-demo``."""
    register(Path(__file__).parent / "recipes")
