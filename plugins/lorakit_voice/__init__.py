"""lorakit's ``voice-clone`` task: LoRA adapters that make a coqui VITS speak in a new voice.

Registered through the ``lorakit`` entry-point group like any third-party
plugin. Importing this package stays instant: torch and coqui-tts are
imported inside the task's methods.
"""

from lorakit import hookimpl


@hookimpl
def register_tasks(register):
    """Register the ``voice-clone`` task."""
    from lorakit_voice.task import VoiceCloneTask

    register(VoiceCloneTask)
