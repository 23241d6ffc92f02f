"""`lorakit train music-style` on description files that are not UTF-8
(Latin-1 bytes from an old editor), as a user runs it: one message naming the
file and line, no traceback, no run folder."""

import shutil
from pathlib import Path

import pytest

import lorakit_music
from cli_failure import fails_cleanly

# One subprocess per case, several seconds each; tests/badinput covers the same kinds in the slow step too.
pytestmark = pytest.mark.slow

TRACKS = Path(lorakit_music.__file__).parent / "samples" / "retain"
#: file name -> its text; the second description has an é, written as Latin-1.
LAYOUTS = {
    "sidecar .txt": {"piano-01.txt": "calm piano", "piano-02.txt": "calm café piano"},
    "metadata.jsonl": {"metadata.jsonl": '{"file_name": "piano-01.flac", "text": "calm piano"}\n'
                                         '{"file_name": "piano-02.flac", "text": "calm café piano"}\n'},
    "metadata.csv": {"metadata.csv": "piano-01|calm piano|\npiano-02|calm café piano|\n"},
}
BAD_LINE = {"sidecar .txt": "piano-02.txt:1", "metadata.jsonl": "metadata.jsonl:2", "metadata.csv": "metadata.csv:2"}


@pytest.mark.parametrize("layout", LAYOUTS)
def test_latin_1_descriptions_are_named_with_file_and_line(tmp_path, layout):
    folder = tmp_path / "tracks"
    folder.mkdir()
    for name in ("piano-01.flac", "piano-02.flac"):
        shutil.copy(TRACKS / name, folder / name)
    for name, text in LAYOUTS[layout].items():
        (folder / name).write_bytes(text.encode("latin-1"))
    fails_cleanly("train", "music-style", "--data", folder, "--base", "demo", "--output", tmp_path / "run",
                  names=(str(folder / BAD_LINE[layout]), "not UTF-8", "save it as UTF-8"))
    assert not (tmp_path / "run").exists()
