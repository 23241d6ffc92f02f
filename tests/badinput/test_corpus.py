"""Every case of the bad-input corpus through the real CLI, as a user runs it.

Each must fail with a non-zero exit and one ``error:`` line naming the file
(and line or entry), no traceback; leave nothing new where the output would
go; run no code from any file; and touch nothing outside the folders on its
command line. Slow (one process per case): run with ``pytest -m slow``.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from cli_failure import fails_cleanly, files_under
from corpus import CASES, Kit

@pytest.fixture(scope="module")
def kit(tmp_path_factory) -> Kit:
    kit = Kit(tmp_path_factory.mktemp("badinput"))
    kit.outside  # noqa: B018 (made before any case runs)
    return kit


def snapshot(path: Path) -> dict[str, str]:
    """What is at ``path``: each entry of a folder (links not followed), or the
    file itself, by what it is: a file by its bytes' hash, a link by its
    target, a folder as such. Empty when nothing is there."""
    if not path.exists() and not path.is_symlink():
        return {}
    entries = [path, *sorted(path.rglob("*"))] if path.is_dir() and not path.is_symlink() else [path]
    state = {}
    for entry in entries:
        if entry.is_symlink():
            state[str(entry.relative_to(path))] = f"link to {os.readlink(entry)}"
        elif entry.is_dir():
            state[str(entry.relative_to(path))] = "folder"
        else:
            state[str(entry.relative_to(path))] = hashlib.sha256(entry.read_bytes()).hexdigest()
    return state


@pytest.mark.slow
@pytest.mark.parametrize("name", CASES)
def test_bad_input_is_one_clear_error(kit, name):
    here = kit.root / name
    here.mkdir()
    invocation = CASES[name](kit, here)
    outside, case_folder = snapshot(kit.outside), snapshot(here)
    watched = snapshot(invocation.watch) if invocation.watch else {}

    fails_cleanly(*invocation.args, names=invocation.names, cwd=invocation.cwd or here)

    if invocation.watch:  # the output: nothing new, nothing rewritten (contents compared, not names)
        assert snapshot(invocation.watch) == watched, f"{invocation.watch} was created or changed"
    assert snapshot(here) == case_folder, f"the case's folder {here} (its inputs, the working folder) changed"
    assert not kit.marker.exists(), "code from a user's file ran"
    assert snapshot(kit.outside) == outside, "a file outside the named folders changed"
    assert files_under(kit.outside) == {"private.png", "private.txt", *(
        ["speakers.json"] if (kit.outside / "speakers.json").exists() else [])}


def test_the_corpus_has_sixty_kinds():
    assert len(CASES) >= 60
