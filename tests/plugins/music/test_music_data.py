"""Reading track folders: windows, cached codes, descriptions, bad input."""

import json

import numpy as np
import pytest
import soundfile
from music_tracks import RATE, write_track

from lorakit.api import DataError
from lorakit_music.codes import CodeCache
from lorakit_music.data import Windowing, read_tracks, window_starts

WINDOW = Windowing(2.0, RATE, 50)


def read(folder, demo_base, cache_folder, trigger=""):
    model = demo_base.model
    return read_tracks(folder, model.audio_encoder, model.decoder.num_codebooks, WINDOW, CodeCache(cache_folder),
                       trigger, show=False)


def test_window_starts_cut_whole_windows_and_keep_a_long_tail():
    assert window_starts(99, 100) == []
    assert window_starts(100, 100) == [0]
    assert window_starts(240, 100) == [0, 100]  # a 40-sample tail is under half a window: dropped
    assert window_starts(260, 100) == [0, 100, 160]  # a 60-sample tail: one more window, aligned to the end


def test_tracks_become_windows_of_whole_codec_frames(tmp_path, demo_base, code_cache):
    write_track(tmp_path / "music" / "a.wav", 5.0, seed=1)
    write_track(tmp_path / "music" / "b.wav", 2.5, seed=2, rate=44100)  # resampled to the codec's rate
    found = read(tmp_path / "music", demo_base, code_cache)
    windows = {e.clip: e for e in found.examples}
    # a: 5 s -> [0, 2) [2, 4) and the 1 s tail aligned to the end; b: one window.
    assert sorted(windows) == ["a.wav#1", "a.wav#2", "a.wav#3", "b.wav#1"]
    for example in found.examples:
        assert tuple(example.codes.shape) == (4, 100)  # 2 s at 50 frames/s, 4 codebooks
        assert 0 <= int(example.codes.min()) and int(example.codes.max()) < 128
    assert {e.group for e in found.examples} == {"a.wav", "b.wav"}
    # The demo codec's codebooks are initialised: real music uses many codes.
    assert len(np.unique(windows["a.wav#1"].codes[0].numpy())) > 10


def test_a_second_read_encodes_nothing_and_gives_the_same_codes(tmp_path, demo_base, code_cache, monkeypatch):
    for index in range(3):
        write_track(tmp_path / "music" / f"{index}.wav", 3.0, seed=index)
    first = read(tmp_path / "music", demo_base, code_cache)
    assert (first.encoded, first.cached) == (3, 0)

    import lorakit_music.codes as codes

    def no_encoding(*args, **kwargs):
        raise AssertionError("encoded although cached")

    monkeypatch.setattr(codes, "encode_windows", no_encoding)
    second = read(tmp_path / "music", demo_base, code_cache)
    assert (second.encoded, second.cached) == (0, 3)
    for a, b in zip(first.examples, second.examples):
        assert a.clip == b.clip and np.array_equal(a.codes.numpy(), b.codes.numpy())


def test_a_changed_track_is_encoded_again(tmp_path, demo_base, code_cache):
    write_track(tmp_path / "music" / "a.wav", 3.0, seed=1)
    read(tmp_path / "music", demo_base, code_cache)
    write_track(tmp_path / "music" / "a.wav", 3.0, seed=9)
    again = read(tmp_path / "music", demo_base, code_cache)
    assert (again.encoded, again.cached) == (1, 0)


def test_descriptions_from_metadata_and_trigger_word(tmp_path, demo_base, code_cache):
    folder = tmp_path / "lo-fi_jazz"
    write_track(folder / "a.wav", 2.0, seed=1)
    write_track(folder / "sub" / "b.wav", 2.0, seed=2)
    (folder / "metadata.jsonl").write_text(json.dumps({"file_name": "sub/b.wav", "text": "dusty  keys"}) + "\n")
    found = read(folder, demo_base, code_cache)
    assert {e.clip: e.description for e in found.examples} == {"a.wav#1": "lo fi jazz", "sub/b.wav#1": "dusty keys"}
    triggered = read(folder, demo_base, code_cache, trigger="sks")
    assert {e.clip: e.description for e in triggered.examples} == {"a.wav#1": "sks", "sub/b.wav#1": "sks dusty keys"}


def test_sidecar_descriptions(tmp_path, demo_base, code_cache):
    write_track(tmp_path / "m" / "a.flac", 2.0, seed=1)
    (tmp_path / "m" / "a.txt").write_text("bright square lead\n")
    assert read(tmp_path / "m", demo_base, code_cache).examples[0].description == "bright square lead"


def test_unusable_tracks_are_rejected_with_their_reason(tmp_path, demo_base, code_cache):
    folder = tmp_path / "m"
    write_track(folder / "good.wav", 2.0, seed=1)
    write_track(folder / "short.wav", 1.0, seed=2)
    soundfile.write(str(folder / "silent.wav"), np.zeros(3 * RATE, dtype=np.float32), RATE)
    soundfile.write(str(folder / "slow.wav"), np.random.default_rng(0).standard_normal(3 * 1000) * 0.1, 1000)
    (folder / "broken.wav").write_bytes(b"RIFF....not audio at all")
    (folder / "notes.pdf").write_bytes(b"%PDF")
    found = read(folder, demo_base, code_cache)
    assert [e.clip for e in found.examples] == ["good.wav#1"]
    reasons = dict(found.rejected)
    assert "shorter than one window (2 s)" in reasons["short.wav"]
    assert reasons["silent.wav"] == "silent"
    assert "1000 Hz is implausible" in reasons["slow.wav"]
    assert "not readable audio" in reasons["broken.wav"]
    assert "not an audio file" in reasons["notes.pdf"]
    assert found.summary(50)["rejected"][0]["file"]


def test_a_folder_without_usable_music_is_an_error_naming_the_files(tmp_path, demo_base, code_cache):
    write_track(tmp_path / "m" / "short.wav", 1.0)
    with pytest.raises(DataError, match=r"no usable music \(short.wav: 1.0 s of music is shorter than one window"):
        read(tmp_path / "m", demo_base, code_cache)
    assert not code_cache.exists() or not list(code_cache.rglob("*.safetensors"))


def test_descriptions_without_tracks_are_errors(tmp_path, demo_base, code_cache):
    write_track(tmp_path / "m" / "a.wav", 2.0)
    (tmp_path / "m" / "metadata.jsonl").write_text('{"file_name": "a.wav", "text": "x"}\n'
                                                  '{"file_name": "missing.wav", "text": "y"}\n')
    with pytest.raises(DataError, match=r"metadata.jsonl:2: describes 'missing.wav', but .* has no such audio track"):
        read(tmp_path / "m", demo_base, code_cache)
    (tmp_path / "m" / "metadata.jsonl").unlink()
    (tmp_path / "m" / "gone.txt").write_text("orphan description")
    with pytest.raises(DataError, match="descriptions without a track: gone.txt"):
        read(tmp_path / "m", demo_base, code_cache)


def test_a_missing_folder_is_an_error(tmp_path, demo_base, code_cache):
    with pytest.raises(DataError, match="does not exist"):
        read(tmp_path / "nowhere", demo_base, code_cache)
