"""Which voice a merged export speaks: named in its config and its model card.

Merging writes the adapter into weights every speaker slot shares, so the
exported multi-speaker model has one slot that carries the cloned voice and
others that are no longer the base's voices. coqui has no default speaker, so
the slot is named where users and tools look: ``config.json`` gets a
``"lorakit": {"cloned_speaker": NAME}`` entry (coqui ignores keys it does
not know) and ``README.md`` says how to speak with it. lorakit itself reads
the entry: ``--slot auto`` on such a base is the cloned voice.
"""

from __future__ import annotations

import json
from pathlib import Path

from lorakit_voice.base import CHECKPOINT, CONFIG


def card_header(library: str | None, *tags: str) -> str:
    """The Hugging Face metadata block of a voice export's card: the Hub
    files it as a text-to-speech model (and its library, when it has one)."""
    lines = ["---", "pipeline_tag: text-to-speech"] + ([f"library_name: {library}"] if library else [])
    lines += ["tags:"] + [f"- {tag}" for tag in ("lorakit", "voice-clone", *tags, "text-to-speech")]
    return "\n".join(lines + ["---", "", ""])


CARD = """# A voice cloned with lorakit, merged into a coqui VITS

`model.pth` + `config.json` load with coqui-tts as any VITS checkpoint does.
{speaker_text}

```bash
tts --model_path model.pth --config_path config.json {speaker_flag}--text "Hello there." --out_path hello.wav
lorakit predict voice-clone --base . --text "Hello there." --out hello.wav
```
"""

MULTI = """The cloned voice is the speaker slot **`{name}`**: pass it as the speaker
(`--speaker_idx {name}`, or `speaker_name="{name}"` to coqui's `Synthesizer`).
The merge changed weights every slot shares, so the model's other slots no longer
speak the base's voices. `config.json` names the slot too (`lorakit.cloned_speaker`),
and lorakit speaks it by default."""


def write_clone_card(folder: Path, speaker: str | None) -> None:
    """Name the cloned voice's slot in ``folder/config.json`` and write ``README.md``."""
    if speaker is not None:
        config_path = folder / CONFIG
        config = json.loads(config_path.read_text(encoding="utf-8"))
        config["lorakit"] = {"cloned_speaker": speaker}
        config_path.write_text(json.dumps(config, indent=4), encoding="utf-8")
        text = MULTI.format(name=speaker)
        flag = f"--speaker_idx {speaker} "
    else:
        text, flag = "It speaks one voice, the cloned one.", ""
    card = card_header("coqui", "vits") + CARD.format(speaker_text=text, speaker_flag=flag)
    (folder / "README.md").write_text(card, encoding="utf-8")


def cloned_speaker(folder: str | Path | None) -> str | None:
    """The slot a merged export's ``config.json`` names as its cloned voice."""
    if not folder or not (Path(folder) / CHECKPOINT).is_file():
        return None
    try:
        entry = json.loads((Path(folder) / CONFIG).read_text(encoding="utf-8")).get("lorakit")
    except (OSError, ValueError, AttributeError):
        return None
    name = entry.get("cloned_speaker") if isinstance(entry, dict) else None
    return name if isinstance(name, str) else None
