"""`lorakit music-import`: a Hugging Face music dataset on disk becomes a
music folder (tracks as stored + metadata.jsonl) that `lorakit run
music-style` reads."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from hf_dataset import AUDIO, TEXT, image_cell, write_hub_dataset
from lorakit.errors import ConfigError
from lorakit_music.data import default_description, read_descriptions
from lorakit_music.hf_import import import_tracks

pytest.importorskip("pyarrow")  # in lorakit[test]; users are told to pip install it

CHIPTUNE = Path(__file__).resolve().parents[3] / "samples" / "music" / "chiptune"


def described() -> dict[str, str]:
    lines = (CHIPTUNE / "metadata.jsonl").read_text().splitlines()
    return {row["file_name"]: row["text"] for row in map(json.loads, lines)}


def test_tracks_and_their_descriptions_or_tags_become_a_music_folder(tmp_path):
    texts = described()
    rows = [{"audio": image_cell((CHIPTUNE / name).read_bytes(), name), "caption": text, "tags": text.split()[:2]}
            for name, text in sorted(texts.items())]
    rows.append({"audio": rows[0]["audio"], "caption": "", "tags": []})  # no description: skipped
    dataset = write_hub_dataset(tmp_path / "ds", {"train": rows}, {"audio": AUDIO, "caption": TEXT, "tags": None})
    summary = import_tracks(dataset, tmp_path / "out", show_progress=False)
    assert (summary.records, summary.files) == (len(texts), len(texts))
    assert summary.skipped == {"rows without a description": 1}
    tracks = sorted((tmp_path / "out").glob("*.flac"))
    assert {path.name: text for path, text in read_descriptions(tmp_path / "out", tracks).items()} == {
        Path(name).name: text for name, text in texts.items()}
    assert all((tmp_path / "out" / name).read_bytes() == (CHIPTUNE / name).read_bytes() for name in texts)
    import_tracks(dataset, tmp_path / "tags", text_column="tags", show_progress=False)
    first = json.loads((tmp_path / "tags" / "metadata.jsonl").read_text().splitlines()[0])
    assert first["text"] == ", ".join(texts[first["file_name"]].split()[:2])


def test_the_command_says_what_it_wrote(tmp_path):
    rows = [{"audio": image_cell((CHIPTUNE / name).read_bytes(), name), "text": text}
            for name, text in sorted(described().items())[:3]]
    dataset = write_hub_dataset(tmp_path / "ds", {"train": rows}, {"audio": AUDIO, "text": TEXT})
    done = subprocess.run([sys.executable, "-m", "lorakit", "music-import", str(dataset), "--out", str(tmp_path / "m"),
                           "--quiet"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert f"3 tracks with their descriptions written to {tmp_path / 'm'}" in " ".join(done.stderr.split())


def test_a_dataset_of_tracks_alone_is_imported_for_a_run_to_describe(tmp_path):
    """No description column: the tracks alone, described in a run by --trigger
    or the folder's name, as any track without a description."""
    names = sorted(described())[:3]
    rows = [{"audio": image_cell((CHIPTUNE / name).read_bytes(), name), "id": str(i)} for i, name in enumerate(names)]
    dataset = write_hub_dataset(tmp_path / "ds", {"train": rows}, {"audio": AUDIO, "id": TEXT})
    out = tmp_path / "retro_chip"
    done = subprocess.run([sys.executable, "-m", "lorakit", "music-import", str(dataset), "--out", str(out),
                           "--quiet"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    said = " ".join(done.stderr.split())
    assert f"3 tracks written to {out}, without descriptions" in said and "--trigger" in said, said
    assert not (out / "metadata.jsonl").exists()
    tracks = sorted(out.glob("*.flac"))
    assert sorted(path.read_bytes() for path in tracks) == sorted((CHIPTUNE / name).read_bytes() for name in names)
    assert read_descriptions(out, tracks) == {} and default_description(out, "") == "retro chip"
    # Naming a column still has to name one there is.
    with pytest.raises(ConfigError, match="--text-column caption: no such column"):
        import_tracks(dataset, tmp_path / "named", text_column="caption", show_progress=False)


def test_an_empty_recording_is_refused_naming_its_row(tmp_path):
    """A zero-length track was imported without a word, and training refused it later."""
    import io

    import numpy as np
    import soundfile

    from lorakit.errors import DataError

    empty = io.BytesIO()
    soundfile.write(empty, np.zeros(0, dtype=np.float32), 32000, format="WAV")
    rows = [{"audio": image_cell(empty.getvalue(), "silence.wav"), "caption": "nothing at all"}]
    dataset = write_hub_dataset(tmp_path / "ds", {"train": rows}, {"audio": AUDIO, "caption": TEXT})
    with pytest.raises(DataError, match=r"row 0: its recording is empty \(no samples\)"):
        import_tracks(dataset, tmp_path / "out", show_progress=False)
    assert not (tmp_path / "out").exists()
