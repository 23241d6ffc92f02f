"""No silently wrong music data: a broken (NaN) track stops the run by name,
a silent one is only rejected, two tracks of one stem share a description aloud."""

import numpy as np
import pytest
import soundfile

from lorakit.api import DataError
from lorakit_music.codes import CodeCache
from lorakit_music.data import TrackFolder, Windowing, _track_codes, read_descriptions

WINDOW = Windowing(1.0, 16000, 50)


def _write(path, samples, subtype="FLOAT"):
    path.parent.mkdir(parents=True, exist_ok=True)
    soundfile.write(str(path), np.asarray(samples, np.float32), 16000, subtype=subtype)
    return path


def _codes(path, tmp_path, found):
    # No codec is needed: both files are dealt with before anything is encoded.
    return _track_codes(path, path.name, None, "codec", 4, WINDOW, CodeCache(tmp_path / "cache"), found)


def test_nan_samples_stop_the_run_naming_the_track_and_silence_is_rejected(tmp_path):
    found = TrackFolder()
    assert _codes(_write(tmp_path / "quiet.wav", np.zeros(32000)), tmp_path, found) is None
    assert found.rejected == [("quiet.wav", "silent")]
    samples = 0.3 * np.sin(np.arange(32000) / 10)
    samples[1000] = np.nan
    broken = _write(tmp_path / "broken.wav", samples)
    with pytest.raises(DataError, match="contains NaN/inf samples") as error:
        _codes(broken, tmp_path, found)
    assert str(broken) in str(error.value) and "not silent" in str(error.value)


def test_two_tracks_of_one_stem_share_its_description_with_a_warning(tmp_path, capsys):
    tracks = [_write(tmp_path / "a.wav", np.zeros(10)), _write(tmp_path / "a.flac", np.zeros(10), "PCM_16")]
    (tmp_path / "a.txt").write_text("calm piano")
    assert read_descriptions(tmp_path, sorted(tracks)) == {track: "calm piano" for track in tracks}
    (line,) = [line for line in capsys.readouterr().err.splitlines() if line.startswith("warning:")]
    assert str(tmp_path / "a.flac") in line and str(tmp_path / "a.wav") in line
