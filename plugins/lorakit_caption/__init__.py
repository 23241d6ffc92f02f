"""lorakit's ``caption`` task: LoRA adapters for BLIP image captioning.

Registered through the ``lorakit`` entry-point group like any third-party
plugin, with the plugin API only (``lorakit.api``). Importing this package
stays instant: torch and transformers are imported inside the task's methods.
"""

from pathlib import Path

from lorakit.api import hookimpl, require_modules


@hookimpl
def register_tasks(register):
    """Register the ``caption`` task."""
    require_modules({"torchvision": "torchvision", "pycocoevalcap": "pycocoevalcap", "open_clip": "open_clip_torch"}, "pip install 'lorakit[caption]'")
    from lorakit_caption.task import CaptionTask

    register(CaptionTask)


@hookimpl
def register_commands(cli):
    """``lorakit caption``: batch captioning of image folders; ``lorakit
    caption-import``: a Hugging Face captioning dataset as a caption folder."""
    from lorakit_caption.command import caption, caption_import

    cli.add_command(caption)
    cli.add_command(caption_import)


@hookimpl
def register_recipes(register):
    """``caption`` (the task's recommended settings), ``caption-demo`` and ``caption-blip-base``."""
    register(Path(__file__).parent / "recipes")
