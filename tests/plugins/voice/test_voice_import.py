"""`lorakit voice-import`: one speaker of a Hugging Face speech dataset on
disk becomes a speaker folder (recordings + LJSpeech metadata.csv) that
`lorakit run voice-clone --speaker` reads."""

import subprocess
import sys
from pathlib import Path

import pytest

from cli_failure import fails_cleanly
from hf_dataset import AUDIO, TEXT, image_cell, write_hub_dataset
from lorakit.api import ConfigError, DataError, read_transcripts
from lorakit_voice.hf_import import import_speaker

pytest.importorskip("pyarrow")  # in lorakit[test]; users are told to pip install it

KAUKO = Path(__file__).resolve().parents[3] / "samples" / "voice" / "kauko"
CHIPTUNE = Path(__file__).resolve().parents[3] / "samples" / "music" / "chiptune"


def speakers_dataset(folder: Path) -> Path:
    """kauko's 40 clips beside another 'speaker' (FLAC tunes), one split, speaker_id in a column."""
    said = read_transcripts(KAUKO)
    rows = [{"audio": image_cell(clip.read_bytes(), f"kauko/{clip.name}"), "text": said[clip.stem],
             "speaker_id": "kauko"} for clip in sorted(KAUKO.glob("*.wav"))]
    rows += [{"audio": image_cell(tune.read_bytes(), tune.name), "text": "la la | la", "speaker_id": "tune"}
             for tune in sorted(CHIPTUNE.glob("*.flac"))[:3]]
    return write_hub_dataset(folder, {"train": rows}, {"audio": AUDIO, "text": TEXT, "speaker_id": TEXT}, shards=2)


def test_one_speaker_of_many_becomes_a_speaker_folder_of_its_own_recordings(tmp_path):
    dataset = speakers_dataset(tmp_path / "ds")
    summary = import_speaker(dataset, tmp_path / "kauko", where=("speaker_id=kauko",), show_progress=False)
    assert (summary.files, summary.skipped) == (40, {})
    assert read_transcripts(tmp_path / "kauko") == read_transcripts(KAUKO)
    for clip in KAUKO.glob("*.wav"):
        assert (tmp_path / "kauko" / clip.name).read_bytes() == clip.read_bytes()
    import_speaker(dataset, tmp_path / "tunes", where=("speaker_id=tune",), show_progress=False)
    assert sorted(p.suffix for p in (tmp_path / "tunes").iterdir()) == [".csv", ".flac", ".flac", ".flac"]
    assert set(read_transcripts(tmp_path / "tunes").values()) == {"la la la"}  # "|" separates metadata.csv fields


def test_bad_speech_datasets_are_named(tmp_path):
    dataset = speakers_dataset(tmp_path / "ds")
    with pytest.raises(ConfigError, match=r"no transcript column among audio, speaker_id; name it with --text-column"):
        import_speaker(write_hub_dataset(tmp_path / "no-text", {"train": [{"audio": image_cell(
            (KAUKO / "0001.wav").read_bytes()), "speaker_id": "kauko"}]}, {"audio": AUDIO, "speaker_id": TEXT}),
            tmp_path / "out")
    not_audio = write_hub_dataset(tmp_path / "png", {"train": [{"audio": image_cell(b"\x89PNG\r\n\x1a\n" + b"0" * 64),
                                                                "text": "hello"}]}, {"audio": AUDIO, "text": TEXT})
    with pytest.raises(DataError, match=r"row 0: its recording is not one libsndfile can read"):
        import_speaker(not_audio, tmp_path / "out", show_progress=False)
    with pytest.raises(DataError, match=r"no rows of split 'train' with speaker_id=p225 could be imported"):
        import_speaker(dataset, tmp_path / "out", where=("speaker_id=p225",), show_progress=False)
    assert not (tmp_path / "out").exists()


def test_the_command_writes_a_folder_voice_clone_reads(tmp_path):
    dataset = speakers_dataset(tmp_path / "ds")
    done = subprocess.run([sys.executable, "-m", "lorakit", "voice-import", str(dataset), "--out", str(tmp_path / "k"),
                           "--where", "speaker_id=kauko", "--limit", "5", "--quiet"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert f"5 recordings with their transcripts written to {tmp_path / 'k'}" in " ".join(done.stderr.split())
    fails_cleanly("voice-import", dataset, "--out", tmp_path / "o", "--where", "speaker", names=("COLUMN=VALUE",))
    assert not (tmp_path / "o").exists()
