"""A merged voice export names the slot that carries the clone, and lorakit
speaks that slot by default from such a base."""

import json
import shutil
from pathlib import Path

from lorakit.apply import load_base
from lorakit.config import RunConfig
from lorakit.runs import make_task
from lorakit_voice.export_card import cloned_speaker, write_clone_card

DEMO = Path(__file__).resolve().parents[3] / "plugins" / "lorakit_voice" / "demo_base"


def _export(tmp_path, speaker):
    folder = tmp_path / "merged"
    shutil.copytree(DEMO, folder)
    write_clone_card(folder, speaker)
    return folder


def test_the_cloned_slot_is_named_in_config_and_card_and_coqui_still_reads_the_config(tmp_path):
    from TTS.config import load_config

    folder = _export(tmp_path, "klatt")
    assert json.loads((folder / "config.json").read_text())["lorakit"] == {"cloned_speaker": "klatt"}
    card = (folder / "README.md").read_text()
    assert "--speaker_idx klatt" in card and "no longer" in card
    from huggingface_hub import ModelCard

    metadata = ModelCard.load(folder / "README.md").data  # the Hub files it as a coqui text-to-speech model
    assert metadata.pipeline_tag == "text-to-speech" and metadata.library_name == "coqui"
    assert {"lorakit", "voice-clone"} <= set(metadata.tags)
    assert load_config(str(folder / "config.json")).speakers == ["low-male", "high-female", "klatt"]
    assert cloned_speaker(folder) == "klatt" and cloned_speaker(DEMO) is None and cloned_speaker(None) is None


def test_slot_auto_on_a_merged_export_is_its_cloned_voice(tmp_path):
    folder = _export(tmp_path, "high-female")
    task = make_task(RunConfig(task="voice-clone", base=str(folder)))
    base = load_base(task, str(folder))
    task.prepare_base(base, None)  # opening without clips to choose a slot by
    assert task.options.slot == "high-female"

    plain = make_task(RunConfig(task="voice-clone", base="demo"))
    plain.prepare_base(load_base(plain, "demo"), None)
    assert plain.options.slot == "low-male", "a base without a cloned voice: the first slot, as before"
