"""lorakit's ``voice-clone`` task: LoRA adapters that make a coqui VITS speak in a new voice.

Registered through the ``lorakit`` entry-point group like any third-party
plugin, with the plugin API only (``lorakit.api``). Importing this package
stays instant: torch and coqui-tts are imported inside the task's methods.
"""

from pathlib import Path

from lorakit.api import hookimpl, require_modules


@hookimpl
def register_tasks(register):
    """Register the ``voice-clone`` task."""
    require_modules({"TTS": "coqui-tts", "resemblyzer": "resemblyzer", "torchaudio": "torchaudio", "librosa": "librosa"},
                    "pip install 'lorakit[voice]'")
    from lorakit_voice.task import VoiceCloneTask

    register(VoiceCloneTask)


@hookimpl
def register_recipes(register):
    """``voice-clone`` (the task's recommended settings) and ``voice-demo``."""
    register(Path(__file__).parent / "recipes")


@hookimpl
def register_commands(cli):
    """``lorakit voice-import``: a Hugging Face speech dataset as a speaker folder."""
    from lorakit_voice.commands import voice_import

    cli.add_command(voice_import)
