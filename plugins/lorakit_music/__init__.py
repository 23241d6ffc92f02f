"""lorakit's ``music-style`` task: LoRA adapters that steer MusicGen toward a style.

Registered through the ``lorakit`` entry-point group like any third-party
plugin, with the plugin API only (``lorakit.api``). Importing this package
stays instant: torch and transformers are imported inside the task's methods.
"""

from pathlib import Path

from lorakit.api import hookimpl, require_modules


@hookimpl
def register_tasks(register):
    """Register the ``music-style`` task."""
    require_modules({"librosa": "librosa", "matplotlib": "matplotlib"}, "pip install 'lorakit[music]'")
    from lorakit_music.task import MusicStyleTask

    register(MusicStyleTask)


@hookimpl
def register_recipes(register):
    """``music-style`` (the task's recommended settings) and ``music-demo``."""
    register(Path(__file__).parent / "recipes")


@hookimpl
def register_commands(cli):
    """``lorakit music-import``: a Hugging Face music dataset as a music folder."""
    from lorakit_music.commands import music_import

    cli.add_command(music_import)
