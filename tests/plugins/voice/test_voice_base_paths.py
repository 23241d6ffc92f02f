"""Side files a voice base's config.json names (speaker and language lists,
d-vectors, a speaker encoder, audio statistics) are read from the base folder
only, and exporting copies them into the new folder under relative names."""

import json
import os
import shutil

import pytest

from lorakit.api import BaseModelError
from lorakit_voice.base import DEMO_BASE, load_vits, save_checkpoint


@pytest.fixture
def base(tmp_path):
    folder = tmp_path / "base"
    shutil.copytree(DEMO_BASE, folder)
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "secret.json").write_text('{"someone": 0}')
    return folder


def name_files(folder, **fields):
    """Set config.json fields; ``model_args__x`` is ``model_args.x``."""
    config = json.loads((folder / "config.json").read_text())
    for key, value in fields.items():
        *parents, leaf = key.split("__")
        node = config[parents[0]] if parents else config
        node[leaf] = value
    (folder / "config.json").write_text(json.dumps(config))


@pytest.mark.parametrize("field, value", [
    ("speakers_file", "{outside}/secret.json"),
    ("model_args.speakers_file", "../outside/secret.json"),
    ("model_args.d_vector_file", ["{outside}/secret.json"]),
    ("model_args.language_ids_file", "link.json"),  # a symlink in the folder that leads out of it
    ("model_args.speaker_encoder_model_path", "https://example.com/se.pth"),
    ("model_args.speaker_encoder_config_path", "~/config_se.json"),
])
def test_a_side_file_outside_the_base_folder_is_refused(base, field, value):
    outside = base.parent / "outside"
    (base / "link.json").symlink_to(outside / "secret.json")
    value = [v.format(outside=outside) for v in value] if isinstance(value, list) else value.format(outside=outside)
    name_files(base, **{field.replace(".", "__"): value})
    with pytest.raises(BaseModelError) as error:
        load_vits(str(base))
    message = str(error.value)
    named = value[0] if isinstance(value, list) else value
    for part in (str(base / "config.json"), field, named, "outside the base folder", "put the file in"):
        assert part in message, (part, message)


def test_audio_stats_are_never_unpickled(base, capsys):
    """coqui would np.load(allow_pickle=True) the stats file; VITS does not use it, so it is dropped."""
    import pickle

    marker = base.parent / "code-ran"

    class Payload:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    (base / "scale_stats.npy").write_bytes(pickle.dumps(Payload()))
    name_files(base, audio__stats_path="scale_stats.npy", audio__signal_norm=True)
    loaded = load_vits(str(base))
    assert loaded.model.config.audio.stats_path is None
    assert not marker.exists()
    assert "audio.stats_path (scale_stats.npy) is ignored" in capsys.readouterr().err


def test_a_missing_side_file_is_named(base):
    name_files(base, model_args__speakers_file="speakers.pth")
    with pytest.raises(BaseModelError, match=r"model_args.speakers_file names speakers.pth, which is not in the base"):
        load_vits(str(base))


def test_side_files_inside_are_read_there_and_exported_relatively(base, tmp_path, monkeypatch):
    """Relative names are the folder's (not the working folder's); a path from
    the machine that trained the model finds the file of that name beside
    config.json; export copies every side file and names it relatively."""
    (base / "lists").mkdir()
    (base / "lists" / "ids.json").write_text('{"a": 0}')
    (base / "ids.json").write_text('{"b": 0}')  # same name, another file
    (base / "speaker_ids.json").write_text('{"c": 0}')
    (tmp_path / "outside" / "speaker_ids.json").write_text('{"not": 0}')
    name_files(base, speakers_file=str(tmp_path / "outside" / "speaker_ids.json"),  # exists, but outside
               model_args__speakers_file="/trained/elsewhere/speaker_ids.json",
               model_args__d_vector_file=["lists/ids.json", str(base / "ids.json")],
               model_args__language_ids_file="lists/../lists/ids.json")
    monkeypatch.chdir(tmp_path / "outside")
    loaded = load_vits(str(base))
    config = loaded.model.config
    assert config.speakers_file == config.model_args.speakers_file == str((base / "speaker_ids.json").resolve())
    assert config.model_args.d_vector_file == [str((base / "lists" / "ids.json").resolve()),
                                               str((base / "ids.json").resolve())]

    out = tmp_path / "merged"
    save_checkpoint(loaded.model, out)
    saved = json.loads((out / "config.json").read_text())
    assert saved["speakers_file"] == saved["model_args"]["speakers_file"] == "speaker_ids.json"
    assert saved["model_args"]["d_vector_file"] == ["ids.json", "2-ids.json"]
    assert saved["model_args"]["language_ids_file"] == "ids.json"
    assert (out / "ids.json").read_text() == '{"a": 0}' and (out / "2-ids.json").read_text() == '{"b": 0}'
    assert (out / "speaker_ids.json").read_text() == '{"c": 0}'
    moved = tmp_path / "moved"
    shutil.move(out, moved)
    assert load_vits(str(moved)).model.config.model_args.d_vector_file[1] == str((moved / "2-ids.json").resolve())
