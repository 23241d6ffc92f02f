"""lorakit's ``music-style`` task: LoRA adapters that steer MusicGen toward a style.

Registered through the ``lorakit`` entry-point group like any third-party
plugin. Importing this package stays instant: torch and transformers are
imported inside the task's methods.
"""

from lorakit import hookimpl


@hookimpl
def register_tasks(register):
    """Register the ``music-style`` task."""
    from lorakit_music.task import MusicStyleTask

    register(MusicStyleTask)
