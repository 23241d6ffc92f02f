"""lorakit's ``caption`` task: LoRA adapters for BLIP image captioning.

Registered through the ``lorakit`` entry-point group like any third-party
plugin. Importing this package stays instant: torch and transformers are
imported inside the task's methods.
"""

from lorakit import hookimpl


@hookimpl
def register_tasks(register):
    """Register the ``caption`` task."""
    from lorakit_caption.task import CaptionTask

    register(CaptionTask)


@hookimpl
def register_commands(cli):
    """``lorakit caption``: batch captioning of image folders."""
    from lorakit_caption.command import caption

    cli.add_command(caption)
