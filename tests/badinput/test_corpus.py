"""Every case of the bad-input corpus through the real CLI, as a user runs it.

Each must fail with a non-zero exit and one ``error:`` line naming the file
(and line or entry), no traceback; leave nothing new where the output would
go; run no code from any file; and touch nothing outside the folders on its
command line. Slow (one process per case): run with ``pytest -m slow``.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from cli_failure import fails_cleanly, files_under
from corpus import CASES, Kit

@pytest.fixture(scope="module")
def kit(tmp_path_factory) -> Kit:
    kit = Kit(tmp_path_factory.mktemp("badinput"))
    kit.outside  # noqa: B018 (made before any case runs)
    return kit


def fingerprint(folder: Path) -> dict[str, str]:
    """Each file under ``folder`` (links not followed) by its bytes' hash."""
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file() and not p.is_symlink()}


@pytest.mark.slow
@pytest.mark.parametrize("name", CASES)
def test_bad_input_is_one_clear_error(kit, name):
    here = kit.root / name
    here.mkdir()
    invocation = CASES[name](kit, here)
    outside = fingerprint(kit.outside)
    watched = files_under(invocation.watch) if invocation.watch else set()
    watched_existed = bool(invocation.watch and invocation.watch.exists())

    fails_cleanly(*invocation.args, names=invocation.names, cwd=invocation.cwd or here)

    if invocation.watch:
        assert invocation.watch.exists() == watched_existed, f"{invocation.watch} was created"
        assert files_under(invocation.watch) == watched, f"{invocation.watch} gained files"
    assert not kit.marker.exists(), "code from a user's file ran"
    assert fingerprint(kit.outside) == outside, "a file outside the named folders changed"
    assert files_under(kit.outside) == {"private.png", "private.txt", *(
        ["speakers.json"] if (kit.outside / "speakers.json").exists() else [])}


def test_the_corpus_has_sixty_kinds():
    assert len(CASES) >= 60
