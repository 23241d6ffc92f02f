"""Fixtures of the music plugin's tests: the demo MusicGen, and a code cache
of each test's own (so no test sees another's cached codes)."""

import pytest


@pytest.fixture(autouse=True)
def code_cache(tmp_path, monkeypatch):
    """Codes are cached under LORAKIT_CACHE: a fresh folder per test."""
    folder = tmp_path / "cache"
    monkeypatch.setenv("LORAKIT_CACHE", str(folder))
    return folder / "music-codes"


@pytest.fixture(scope="session")
def demo_base():
    """The committed demo base, loaded once for the session."""
    from lorakit_music.task import MusicStyleTask

    return MusicStyleTask().load_base("demo")
