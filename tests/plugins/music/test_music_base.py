"""Loading bases and options: clear errors for every wrong --base and option,
and the demo builder's codec actually tokenises."""

import json
import os
import subprocess
import sys

import pytest

from lorakit.api import BaseModelError, ConfigError
from lorakit_music.task import MusicOptions, MusicStyleTask


def test_demo_base_is_a_musicgen_with_its_special_ids_set(demo_base):
    from transformers import MusicgenForConditionalGeneration

    model = demo_base.model
    assert isinstance(model, MusicgenForConditionalGeneration)
    generation = model.generation_config
    pad = model.config.decoder.pad_token_id
    assert generation.pad_token_id == generation.decoder_start_token_id == generation.bos_token_id == pad
    # A config-built EnCodec has all-zero codebooks; the demo's are initialised and distinct.
    for layer in model.audio_encoder.quantizer.layers:
        book = layer.codebook.embed
        assert book.abs().sum() > 0 and len({tuple(row.tolist()) for row in book}) == book.shape[0]


def test_missing_folder_and_folder_without_config_are_refused(tmp_path):
    with pytest.raises(BaseModelError, match="no such model folder.*facebook/musicgen-small"):
        MusicStyleTask().load_base(str(tmp_path / "nothing"))
    with pytest.raises(BaseModelError, match="has no config.json"):
        MusicStyleTask().load_base(str(tmp_path))


def test_another_architecture_is_refused_before_loading(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "musicgen_melody",
                                                      "architectures": ["MusicgenMelodyForConditionalGeneration"]}))
    with pytest.raises(BaseModelError, match="not a MusicGen model .*musicgen-melody"):
        MusicStyleTask().load_base(str(tmp_path))


def test_a_hub_id_offline_is_a_clear_error():
    # A subprocess, because the hub's offline switch is read at import time.
    code = ("from lorakit_music.task import MusicStyleTask\n"
            "from lorakit.errors import BaseModelError\n"
            "try:\n    MusicStyleTask().load_base('facebook/musicgen-small')\n"
            "except BaseModelError as error:\n    print(error)\n")
    env = dict(os.environ, HF_HUB_OFFLINE="1")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120).stdout
    assert "cannot load the base 'facebook/musicgen-small'" in out and "cached or reachable online" in out


@pytest.mark.parametrize("field, value, message", [
    ("window_seconds", 45, "window_seconds must be a number from 0.5 to 30"),
    ("window_seconds", "long", "window_seconds must be a number"),
    ("seconds", 0, "seconds must be a number"),
    ("top_k", -1, "top_k must be a whole number"),
    ("prompts", [""], "prompts must be a list of non-empty prompts"),
])
def test_bad_options_name_the_field(field, value, message):
    with pytest.raises(ConfigError, match=message):
        MusicOptions(**{field: value})


@pytest.mark.slow
def test_make_demo_quick_builds_a_base_the_task_loads(tmp_path):
    from lorakit_music.make_demo import build

    build(tmp_path / "base", quick=True, log=lambda line: None)
    base = MusicStyleTask().load_base(str(tmp_path / "base"))
    tokenizer = base.processor.tokenizer
    assert len(tokenizer(["calm piano"]).input_ids[0]) == 3  # calm, piano, </s>: description words are pieces
    spelt = tokenizer.convert_ids_to_tokens(tokenizer(["Jazz"]).input_ids[0])
    assert spelt == ["\u2581", "J", "a", "z", "z", "</s>"]  # another word is spelt out, never <unk>


def test_committed_demo_base_and_samples_are_small_and_complete():
    from music_tracks import SAMPLES

    from lorakit_music.base import KIND

    size = sum(p.stat().st_size for p in KIND.demo.iterdir())
    assert (KIND.demo / "config.json").is_file() and (KIND.demo / "tokenizer.json").is_file() and size < 8_000_000
    chiptune = sorted(p.name for p in (SAMPLES / "chiptune").glob("*.flac"))
    described = [json.loads(line)["file_name"] for line in (SAMPLES / "chiptune" / "metadata.jsonl").read_text().splitlines()]
    assert len(chiptune) == 10 and described == chiptune
    assert len(list((SAMPLES / "retain").glob("*.txt"))) == len(list((SAMPLES / "retain").glob("*.flac"))) == 4
