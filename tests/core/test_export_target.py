"""`lorakit export RUN --merged OUT` or `--FORMAT OUT`: one output, named by its flag."""

import pytest

from lorakit.api import ConfigError
from lorakit.cli import export_target


@pytest.mark.parametrize("merged, extra, expected", [
    ("out", [], ("merged", "out")),
    (None, ["--piper", "voice/"], ("piper", "voice/")),
    (None, ["--piper=voice/"], ("piper", "voice/")),
    (None, ["--gguf-q4", "m"], ("gguf-q4", "m")),
])
def test_one_output_names_its_format(merged, extra, expected):
    assert export_target(merged, extra) == expected


@pytest.mark.parametrize("merged, extra", [
    (None, []),  # nothing to write
    ("out", ["--piper", "voice"]),  # two outputs
    (None, ["--piper"]),  # a flag without its folder
    (None, ["--piper", "--merged"]),
    (None, ["piper", "voice"]),  # not a flag
    (None, ["--Piper", "voice"]),
    (None, ["--piper", "a", "b"]),
])
def test_anything_but_one_output_is_refused_with_the_usage(merged, extra):
    with pytest.raises(ConfigError, match="give one output: --merged OUT, or --FORMAT OUT"):
        export_target(merged, extra)


@pytest.mark.parametrize("merged, extra, flag", [("", [], "--merged"), (None, ["--piper", ""], "--piper"),
                                                 (None, ["--piper="], "--piper")])
def test_an_empty_folder_name_is_said_as_such(merged, extra, flag):
    """`--merged ""` was taken as the working folder: ". already exists"."""
    with pytest.raises(ConfigError, match=f"{flag} was given an empty folder name"):
        export_target(merged, extra)
