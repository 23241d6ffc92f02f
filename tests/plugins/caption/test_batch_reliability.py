"""`lorakit caption` when things go wrong: sidecars never leave the folder nor
overwrite a caption unasked, a failing decoding worker ends the run (no hang),
damaged outputs are named by line, and a full disk or a kill -9 loses nothing
that ``--resume`` does not finish, each image exactly once."""

import errno
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from cli_failure import fails_cleanly, files_under, one_error

import lorakit_caption
from lorakit.api import DataError
from lorakit_caption import outputs
from lorakit_caption.batch import CaptionJob, run_caption_job

CATALOG = Path(lorakit_caption.__file__).parent / "samples" / "catalog"
ENV = {**os.environ, "OMP_NUM_THREADS": "1"}


@pytest.fixture
def folder(tmp_path):
    target = tmp_path / "images"
    target.mkdir()
    for path in sorted(CATALOG.glob("*.png"))[:12]:
        shutil.copy(path, target / path.name)
    return target


def _caption(*args, limit_kb: int | None = None, python: list[str] | None = None) -> subprocess.CompletedProcess:
    """``lorakit caption *args`` in a subprocess, under ``ulimit -f limit_kb`` when given."""
    command = [*(python or [sys.executable, "-m", "lorakit"]), "caption", *map(str, args), "--quiet"]
    if limit_kb:
        command = ["bash", "-c", f'ulimit -f {limit_kb}; exec "$@"', "bash", *command]
    return subprocess.run(command, capture_output=True, text=True, env=ENV, timeout=300)


def _one_error(done: subprocess.CompletedProcess, *names: str) -> str:
    """What ``fails_cleanly`` checks, for a run started another way; exit 3 (some images failed) is not it."""
    assert done.returncode != 3, done.stdout + done.stderr
    return one_error(done, names)


def _records(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def _exactly_once(out: Path, folder: Path) -> dict[str, str]:
    records = _records(out)
    images = [r["image"] for r in records]
    assert len(images) == len(set(images)) == len(list(folder.glob("*.png")))
    return {Path(r["image"]).name: r["caption"] for r in records}


def _snapshot(folder: Path) -> dict[str, object]:
    return {name: (os.readlink(folder / name) if (folder / name).is_symlink() else (folder / name).read_bytes())
            for name in files_under(folder) if not (folder / name).is_dir() or (folder / name).is_symlink()}


# -- sidecars ------------------------------------------------------------------


def test_sidecars_stay_in_the_folder_and_keep_existing_captions(folder, tmp_path):
    outside = tmp_path / "library"
    outside.mkdir()
    shutil.copy(next(CATALOG.glob("*.png")), outside / "kept.png")
    (outside / "kept.txt").write_text("a caption written by hand\n")
    (outside / "secret.txt").write_text("not a caption\n")
    (folder / "linked.png").symlink_to(outside / "kept.png")
    first, second = sorted(folder.glob("catalog_*.png"))[:2]
    first.with_suffix(".txt").write_text("red, shoe\n")
    second.with_suffix(".txt").symlink_to(outside / "secret.txt")
    before = _snapshot(outside)

    run = _caption(folder, "--format", "sidecar", "--out", tmp_path / "one.jsonl", "--workers", "0")
    assert run.returncode == 0, run.stderr
    assert "kept 2 existing caption files" in run.stderr
    captions = {Path(r["image"]).name: r["caption"] for r in _records(tmp_path / "one.jsonl")}
    assert len(captions) == 11 and "linked.png" in captions, "beside the link, inside the folder"
    assert (folder / "linked.txt").read_text() == captions["linked.png"] + "\n"
    assert first.with_suffix(".txt").read_text() == "red, shoe\n"
    assert second.with_suffix(".txt").is_symlink()

    summary = run_caption_job(CaptionJob(inputs=[folder], out=tmp_path / "two.jsonl", format="sidecar",
                                         existing="append", workers=0), show_progress=False)
    assert (summary.done, summary.failed, summary.kept) == (12, 1, 0)
    errors = {Path(r["image"]).name: r["error"] for r in _records(tmp_path / "two.errors.jsonl")}
    assert list(errors) == [second.name] and "symbolic link" in errors[second.name]
    appended = {Path(r["image"]).name: r["caption"] for r in _records(tmp_path / "two.jsonl")}
    assert first.with_suffix(".txt").read_text() == f"red, shoe, {appended[first.name]}\n"
    assert (folder / "linked.txt").read_text() == captions["linked.png"] + "\n", "a caption is not appended twice"
    assert _snapshot(outside) == before, "nothing outside the folder was touched"
    assert not [name for name in files_under(folder) if "tmp" in name]


def test_two_images_of_one_name_never_write_one_caption_file_twice(folder, tmp_path):
    """photo.jpg and photo.png caption into photo.txt: the first (by name)
    writes it, the second is a failure that says why, not a silent overwrite;
    a caption file there already is kept for both (--existing skip)."""
    from PIL import Image

    a, b = sorted(folder.glob("catalog_*.png"))[:2]
    Image.open(a).convert("RGB").save(folder / "photo.jpg")
    b.rename(folder / "photo.png")
    summary = run_caption_job(CaptionJob(inputs=[folder], out=tmp_path / "one.jsonl", format="sidecar", workers=0),
                              show_progress=False)
    assert (summary.done, summary.failed) == (12, 1)
    captions = {Path(r["image"]).name: r["caption"] for r in _records(tmp_path / "one.jsonl")}
    assert "photo.png" not in captions and (folder / "photo.txt").read_text() == captions["photo.jpg"] + "\n"
    [error] = _records(tmp_path / "one.errors.jsonl")
    assert Path(error["image"]).name == "photo.png"
    assert f"{folder / 'photo.txt'} is the caption file of {folder / 'photo.jpg'} too" in error["error"]
    assert "rename one of the two images" in error["error"]

    (folder / "photo.txt").write_text("by hand\n")
    summary = run_caption_job(CaptionJob(inputs=[folder], out=tmp_path / "two.jsonl", format="sidecar", workers=0),
                              show_progress=False)
    assert (summary.kept, summary.failed) == (13, 0) and (folder / "photo.txt").read_text() == "by hand\n"


def test_a_symlinked_subfolder_is_not_written_through(folder, tmp_path):
    from lorakit_caption.batch import input_roots

    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (folder / "sub").symlink_to(outside, target_is_directory=True)
    roots = input_roots([folder])
    assert outputs.sidecar_blocker(str(folder / "sub" / "x.png"), roots, "overwrite").startswith("its caption file")
    assert outputs.sidecar_blocker(str(folder / "x.png"), roots, "overwrite") is None
    assert outputs.sidecar_blocker(str(folder / "catalog_001.png"), roots, "skip") is None
    (folder / "catalog_001.txt").write_text("there\n")
    assert outputs.sidecar_blocker(str(folder / "catalog_001.png"), roots, "skip") == outputs.KEEP
    assert outputs.sidecar_blocker(str(folder / "catalog_001.png"), roots, "prepend") is None


@pytest.mark.parametrize("existing, expected", [("overwrite", "new words"), ("append", "old, tags, new words"),
                                                ("prepend", "new words, old, tags")])
def test_existing_caption_files_are_replaced_or_joined(tmp_path, existing, expected):
    image = tmp_path / "a.png"
    image.with_suffix(".txt").write_text("old, tags\n")
    os.chmod(image.with_suffix(".txt"), 0o640)
    outputs.write_sidecar(str(image), "new words", existing)
    assert image.with_suffix(".txt").read_text() == expected + "\n"
    assert oct(image.with_suffix(".txt").stat().st_mode & 0o777) == "0o640"
    outputs.write_sidecar(str(image), "new words", existing)  # a resumed run never doubles a caption
    assert image.with_suffix(".txt").read_text() == expected + "\n"


def test_a_failed_sidecar_write_leaves_the_old_file_and_no_temporary(tmp_path, monkeypatch):
    image = tmp_path / "a.png"
    image.with_suffix(".txt").write_text("old\n")

    def disk_full(*args):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(outputs.os, "replace", disk_full)
    with pytest.raises(outputs.OutputError, match="disk is full") as raised:
        outputs.write_sidecar(str(image), "new", "overwrite")
    assert str(image.with_suffix(".txt")) in str(raised.value) and "--resume" in str(raised.value)
    assert image.with_suffix(".txt").read_text() == "old\n"
    assert files_under(tmp_path) == {"a.txt"}


def test_existing_is_only_for_sidecars(folder):
    fails_cleanly("caption", folder, "--existing", "append", names=("--existing", "sidecar"))


# -- damaged outputs --------------------------------------------------------------


def test_resume_names_a_damaged_line_that_is_not_the_last(folder, tmp_path):
    out = tmp_path / "c.jsonl"
    image = str(next(folder.glob("*.png")))
    out.write_text(json.dumps({"image": image, "caption": "x"}) + '\n{"image": "/half\n'
                   + json.dumps({"image": image + "2", "caption": "y"}) + "\n")
    fails_cleanly("caption", folder, "--out", out, "--resume", "--workers", "0",
                  names=(str(out), "line 2", "fix or delete"))


def test_a_damaged_csv_line_is_named_and_a_torn_last_one_cut(tmp_path):
    out = tmp_path / "c.csv"
    header, empty = ",".join(outputs.CSV_FIELDS), "," * (len(outputs.CSV_FIELDS) - 2)
    out.write_text(f"{header}\n/a.png,x{empty}\ngarbage\n/b.png,y{empty}\n")
    with pytest.raises(outputs.OutputError, match="c.csv, line 3 is damaged"):
        outputs.RecordFile(out, resume=True, kind="csv")
    out.write_text(f'{header}\n/a.png,x{empty}\n/b.png,"torn')
    records = outputs.RecordFile(out, resume=True, kind="csv")
    records.close()
    assert records.done == {"/a.png"} and out.read_text() == f"{header}\n/a.png,x{empty}\n"


# -- decoding workers ------------------------------------------------------------

# Runs the CLI with ImageFiles broken in a given way, in the worker processes.
BROKEN_WORKER = """
import os, signal, sys, time
import lorakit_caption.batch as batch, lorakit_caption.loading as loading
how = sys.argv.pop(1)
batch.WORKER_TIMEOUT_S = loading.WORKER_TIMEOUT_S = 4

def broken(self, index):
    if how == "dies":
        os.kill(os.getpid(), signal.SIGKILL)
    if how == "hangs":
        time.sleep(600)
    if how == "unpicklable":
        return (lambda: None), None, "cannot be sent back"
    raise RuntimeError("a bug in decoding")

loading.ImageFiles.__getitem__ = broken
sys.argv[0] = "lorakit"
from lorakit.cli import main
main()
"""


def test_a_write_limit_in_a_worker_ends_the_run(folder, tmp_path):
    """The reported hang: a worker could not put its batch into shared memory
    (file-size limit), printed why, and the main process waited forever."""
    out = tmp_path / "c.jsonl"
    run = _caption(folder, "--out", out, "--workers", "1", "--batch-size", "12", limit_kb=64)
    _one_error(run, "image decoding stopped", "file-size limit", str(out), "--resume")
    assert out.read_text() == ""


@pytest.mark.parametrize("how, names", [
    ("dies", ("exited unexpectedly",)),
    pytest.param("raises", ("RuntimeError: a bug in decoding",), marks=pytest.mark.slow),
    pytest.param("unpicklable", ("exited unexpectedly",), marks=pytest.mark.slow),
    pytest.param("hangs", ("no image came from the decoding workers for 4 s",), marks=pytest.mark.slow),
])
def test_every_worker_failure_ends_the_run_with_one_error(folder, tmp_path, how, names):
    out = tmp_path / "c.jsonl"
    run = _caption(folder, "--out", out, "--workers", "1", python=[sys.executable, "-c", BROKEN_WORKER, how])
    _one_error(run, "image decoding stopped", *names, str(out), "--resume")
    assert out.read_text() == ""


@pytest.mark.slow
def test_resume_after_a_worker_failure_finishes(folder, tmp_path):
    out = tmp_path / "c.jsonl"
    _one_error(_caption(folder, "--out", out, "--workers", "1", "--batch-size", "4", limit_kb=64), "file-size limit")
    run = _caption(folder, "--out", out, "--workers", "1", "--batch-size", "4", "--resume")
    assert run.returncode == 0, run.stderr
    _exactly_once(out, folder)


def test_resume_lists_only_what_failed_again(folder, tmp_path):
    """A failure fixed and resumed leaves the errors file; one that fails
    again is listed once, not once per attempt."""
    good = sorted(folder.glob("*.png"))[:2]
    for name, source in (("broken-a.png", good[0]), ("broken-b.png", good[1])):
        (folder / name).write_bytes(source.read_bytes()[:40])  # cut inside the header
    out = tmp_path / "c.jsonl"

    def failed() -> list[str]:
        errors = tmp_path / "c.errors.jsonl"
        return [Path(r["image"]).name for r in _records(errors)] if errors.exists() else []

    for fixed, expected in ((None, ["broken-a.png", "broken-b.png"]), ("broken-a.png", ["broken-b.png"]),
                            (None, ["broken-b.png"]), ("broken-b.png", [])):
        if fixed:
            shutil.copy(good[0], folder / fixed)
        summary = run_caption_job(CaptionJob(inputs=[folder], out=out, workers=0, resume=out.exists()),
                                  show_progress=False)
        assert failed() == expected and summary.failed == len(expected)
    _exactly_once(out, folder)


def test_a_second_job_on_an_output_in_use_is_refused(folder, tmp_path, monkeypatch):
    """Two jobs on one --out (a --resume started while the first still goes)
    each captioned every image, twice in all: the second is refused."""
    from lorakit.api import OutputError
    from lorakit_caption import captioner

    out = tmp_path / "new" / "c.jsonl"
    second = []
    load = captioner.load_captioner

    def second_job_while_loading(job):  # the first job holds --out, its model still loading
        if not second:
            second.append(job)
            with pytest.raises(OutputError, match=f"c.jsonl is being written by another lorakit caption "
                                                  f"\\(process {os.getpid()}\\).*--resume"):
                run_caption_job(CaptionJob(inputs=[folder], out=out, workers=0, resume=True), show_progress=False)
        return load(job)

    monkeypatch.setattr(captioner, "load_captioner", second_job_while_loading)
    summary = run_caption_job(CaptionJob(inputs=[folder], out=out, workers=0, resume=True), show_progress=False)
    assert summary.done == 12
    _exactly_once(out, folder)
    assert sorted(p.name for p in out.parent.iterdir()) == ["c.jsonl"]  # the lock file is gone


@pytest.mark.slow
def test_a_job_that_fails_before_captioning_leaves_no_folder(folder, tmp_path):
    out = tmp_path / "new" / "c.jsonl"
    run = _caption(folder, "--out", out, "--base", tmp_path / "no-such-model")
    _one_error(run, "no such model folder")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["images"]


# -- several processes -------------------------------------------------------------


def test_resume_with_fewer_processes_folds_the_old_shards(folder, tmp_path):
    """A two-process run crashed; resumed by one process, what its shards hold
    is done, and the shards are merged, each image once."""
    from lorakit_caption.batch import find_images, shard_path

    out = tmp_path / "sharded.jsonl"
    images, _ = find_images([folder], recursive=False)
    for rank, done in ((0, images[0:4]), (1, images[4:6])):
        lines = [json.dumps({"image": image, "caption": "from before the crash"}) for image in done]
        shard_path(out, rank, 2).write_text("\n".join(lines) + '\n{"image": "/torn', encoding="utf-8")
    with pytest.raises(DataError, match="shard0-of-2.jsonl already exists; pass --resume"):
        run_caption_job(CaptionJob(inputs=[folder], out=out, workers=0), show_progress=False)
    summary = run_caption_job(CaptionJob(inputs=[folder], out=out, workers=0, resume=True), show_progress=False)
    assert (summary.skipped, summary.done) == (6, 6)
    captions = _exactly_once(out, folder)
    assert sum(caption == "from before the crash" for caption in captions.values()) == 6
    assert not list(tmp_path.glob("*.shard*"))


# -- crashes and full disks ---------------------------------------------------------


@pytest.mark.slow
def test_a_full_disk_leaves_whole_records_and_resume_finishes(folder, tmp_path):
    for path in list(folder.glob("*.png")):
        shutil.copy(path, folder / f"copy_{path.name}")
    out = tmp_path / "c.jsonl"
    run = _caption(folder, "--out", out, "--workers", "0", "--batch-size", "4", limit_kb=4)
    _one_error(run, "file-size limit", str(out), "--resume")
    data = out.read_bytes()
    assert 0 < len(data) <= 4096 and data.endswith(b"\n")
    written = len(_records(out))
    run = _caption(folder, "--out", out, "--workers", "0", "--batch-size", "4", "--resume")
    assert run.returncode == 0, run.stderr
    assert f"skipped {written} (already done)" in run.stderr
    _exactly_once(out, folder)


def _kill_after(command: list[str], out: Path, lines: int) -> bool:
    """Start ``command``; kill -9 it once ``out`` has ``lines`` lines. False if it finished first."""
    process = subprocess.Popen(command, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 240
    while process.poll() is None and time.time() < deadline:
        if out.exists() and out.read_bytes().count(b"\n") >= lines:
            process.send_signal(signal.SIGKILL)
            break
        time.sleep(0.02)
    process.wait()
    return process.returncode == -signal.SIGKILL


@pytest.mark.slow
@pytest.mark.parametrize("fmt", ["jsonl", "sidecar"])
def test_kill_9_at_several_points_then_resume_gives_the_uninterrupted_captions(folder, tmp_path, fmt):
    for i in range(2):
        for path in sorted(folder.glob("catalog_*.png")):
            shutil.copy(path, folder / f"copy{i}_{path.name}")
    flags = ["--workers", "1", "--batch-size", "1", "--num-beams", "3", "--format", fmt]
    reference = tmp_path / "reference"
    shutil.copytree(folder, reference)
    assert _caption(reference, "--out", tmp_path / "reference.jsonl", *flags).returncode == 0
    expected = _exactly_once(tmp_path / "reference.jsonl", reference)

    out = tmp_path / "c.jsonl"
    command = [sys.executable, "-m", "lorakit", "caption", str(folder), "--out", str(out), *flags, "--quiet"]
    kills = []
    for lines in (1, 8, 20):  # the first run, then two resumed runs, each killed
        kills.append(_kill_after(command + (["--resume"] if out.exists() else []), out, lines))
    assert sum(kills) >= 2, "the runs finished before they could be killed"
    run = _caption(folder, "--out", out, *flags, "--resume")
    assert run.returncode == 0, run.stderr
    assert _exactly_once(out, folder) == expected
    if fmt == "sidecar":
        assert {p.stem: p.read_text().strip() for p in folder.glob("*.txt")} == {
            Path(name).stem: caption for name, caption in expected.items()}
        assert not [name for name in files_under(folder) if "tmp" in name]
