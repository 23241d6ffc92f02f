import json
from pathlib import Path

import numpy as np
import pytest
import soundfile

from lorakit.errors import ConfigError, OutputError
from lorakit.predictions import check_lines_target, write_predictions


def _audio(n):
    return [{"text": f"t{i}", "audio": np.sin(np.arange(800) / 5).astype(np.float32) * 0.5, "sample_rate": 8000}
            for i in range(n)]


def test_single_audio_prediction_to_a_wav(tmp_path):
    lines = write_predictions(_audio(1), tmp_path / "hello.wav")
    data, rate = soundfile.read(tmp_path / "hello.wav")
    assert rate == 8000 and len(data) == 800
    assert json.loads(lines) == {"text": "t0", "audio": str(tmp_path / "hello.wav"), "sample_rate": 8000}


@pytest.mark.parametrize("name, container", [("song.mp3", "MP3"), ("song.ogg", "OGG"), ("song.flac", "FLAC")])
def test_one_audio_prediction_in_the_format_its_name_says(tmp_path, name, container):
    """`--out song.mp3` was a folder named song.mp3 holding 0001.wav."""
    import os

    lines = write_predictions(_audio(1), tmp_path / name)
    info = soundfile.info(tmp_path / name)
    assert (tmp_path / name).is_file() and info.format == container and abs(info.duration - 0.1) < 0.03
    assert json.loads(lines)["audio"] == str(tmp_path / name)
    assert json.loads(lines)["sample_rate"] == info.samplerate  # 48000 for Opus, not the model's 8000
    umask = os.umask(0)
    os.umask(umask)
    assert (tmp_path / name).stat().st_mode & 0o777 == 0o666 & ~umask  # not mkstemp's 0600


@pytest.mark.parametrize("name", ["song.m4a", "song.aiff", "song.WMA"])
def test_an_audio_name_lorakit_does_not_write_is_refused(tmp_path, name):
    """`--out song.aiff` was a folder named song.aiff holding 0001.wav."""
    with pytest.raises(ConfigError, match=f"{name}: lorakit writes audio as .wav, .flac, .mp3"):
        write_predictions(_audio(1), tmp_path / name)
    assert not list(tmp_path.iterdir())


def test_several_audio_predictions_to_a_folder(tmp_path):
    write_predictions(_audio(3), tmp_path / "out")
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["0001.wav", "0002.wav", "0003.wav", "predictions.jsonl"]
    assert len((tmp_path / "out" / "predictions.jsonl").read_text().splitlines()) == 3


def test_audio_needs_out_and_one_file_holds_one(tmp_path):
    with pytest.raises(ConfigError, match="--out"):
        write_predictions(_audio(1), None)
    with pytest.raises(ConfigError, match="FOLDER"):
        write_predictions(_audio(2), tmp_path / "two.wav")
    assert not list(tmp_path.iterdir())


def test_audio_goes_into_a_folder_of_clips_only_over_an_earlier_prediction(tmp_path):
    """`--out` naming the folder of the speaker's clips wrote 0001.wav over the first of them."""
    clips = tmp_path / "clips"
    clips.mkdir()
    (clips / "0002.wav").write_bytes(b"the speaker's own clip")
    with pytest.raises(OutputError, match=r"clips holds 0002.wav, which lorakit did not write there \(no "
                                          "predictions.jsonl beside them\): choose a new or empty folder"):
        write_predictions(_audio(2), clips)
    assert [p.name for p in clips.iterdir()] == ["0002.wav"] and (clips / "0002.wav").read_bytes().startswith(b"the")
    write_predictions(_audio(3), tmp_path / "out")
    write_predictions(_audio(2), tmp_path / "out")  # an earlier prediction is written over
    assert len((tmp_path / "out" / "predictions.jsonl").read_text().splitlines()) == 2


def test_json_lines_go_over_earlier_predictions_but_never_an_input_or_another_file(tmp_path):
    image, notes, earlier = tmp_path / "photo.png", tmp_path / "notes.md", tmp_path / "p.jsonl"
    image.write_bytes(b"\x89PNG\r\n\x1a\n...")
    notes.write_text("# my notes\n")
    earlier.write_text('{"image": "a.png", "caption": "x"}\n')
    with pytest.raises(OutputError, match="--out .*photo.png is one of the inputs"):
        check_lines_target(image, [str(image)])
    with pytest.raises(OutputError, match="notes.md exists and is not JSON lines"):
        check_lines_target(notes, [str(image)])
    with pytest.raises(OutputError, match="photo.png exists and is not JSON lines"):
        check_lines_target(image, ["1,2,3,4"])
    check_lines_target(earlier, [str(image), "a sentence to classify " * 20, "a\0b"])  # texts are inputs too
    check_lines_target(tmp_path / "new.jsonl", [str(image)])
    (tmp_path / "empty.jsonl").write_text("")
    check_lines_target(tmp_path / "empty.jsonl", [str(image)])


def test_plain_records_are_json_lines(tmp_path):
    lines = write_predictions([{"image": "a.png", "caption": "x"}], tmp_path / "p.jsonl")
    assert (tmp_path / "p.jsonl").read_text() == lines == '{"image": "a.png", "caption": "x"}\n'


def test_tensors_and_arrays_in_records_are_numbers_as_the_server_sends_them():
    import torch

    from lorakit.serving.app import _jsonable

    record = {"label": "pos", "scores": torch.tensor([0.25, 0.75]), "top": np.float32(0.75),
              "each": [{"p": torch.tensor(0.5)}], "ids": np.arange(3)}
    wanted = {"label": "pos", "scores": [0.25, 0.75], "top": 0.75, "each": [{"p": 0.5}], "ids": [0, 1, 2]}
    assert json.loads(write_predictions([record], None)) == wanted  # it wrote "tensor([0.2500, 0.7500])"
    assert json.loads(json.dumps(_jsonable(record))) == wanted


def test_a_predict_answer_that_is_not_one_dict_per_input_is_the_task_s_error():
    from lorakit.errors import PluginError
    from lorakit.predictions import check_records

    assert check_records("t", [{"y": 1}, {"y": 2}], ["a", "b"]) == [{"y": 1}, {"y": 2}]
    with pytest.raises(PluginError, match=r"task 't': predict returned 1 records for 2 inputs; return one per input"):
        check_records("t", [{"y": 1}], ["a", "b"])
    with pytest.raises(PluginError, match=r"predict must return a list of dicts, one per input; got dict"):
        check_records("t", {"label": "pos", "score": 1}, ["a"])  # was written as its keys, one a line
    with pytest.raises(PluginError, match=r"got a list holding str"):
        check_records("t", ["pos"], ["a"])


@pytest.mark.parametrize("task, given", [("voice-clone", ["--text", "Hi."]), ("music-style", ["--prompt", "calm"])])
def test_audio_tasks_ask_for_out_before_anything_loads(task, given, monkeypatch, tmp_path):
    """A missing or unusable --out is said at once, not after the base has
    loaded and spoken (minutes for a real-size MusicGen on a CPU)."""
    from click.testing import CliRunner

    from lorakit import runs
    from lorakit.cli import cli

    monkeypatch.setattr(runs, "predict", lambda *args, **kwargs: pytest.fail("the prediction ran"))
    result = CliRunner().invoke(cli, ["predict", task, "--base", "demo", *given])
    assert result.exit_code == 2 and "these predictions are audio: pass --out FILE.wav" in result.output
    result = CliRunner().invoke(cli, ["predict", task, "--base", "demo", *given, *given,
                                      "--out", str(tmp_path / "one.wav")])
    assert result.exit_code == 2 and "2 audio predictions cannot go to one file" in result.output
    result = CliRunner().invoke(cli, ["predict", task, "--base", "demo", *given, "--out", str(tmp_path / "clips.wav") + "/"])
    assert result.exit_code == 2 and "names a folder like an audio file" in result.output  # it wrote a file clips.wav
    if Path("/proc/self").is_dir():  # a place that takes no new file: it was said after the work, as a traceback
        result = CliRunner().invoke(cli, ["predict", task, "--base", "demo", *given, "--out", "/proc/lorakit/one.wav"])
        assert result.exit_code == 1 and "/proc takes no new files or folders" in result.output, result.output
    (tmp_path / "taken").write_text("x")
    result = CliRunner().invoke(cli, ["predict", task, "--base", "demo", *given, "--out", str(tmp_path / "taken")])
    assert result.exit_code == 1 and "taken is a file; pass a folder" in result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["taken"]
