"""`lorakit caption`: resume after a kill, bad files, formats, adapter weights,
provenance, and two-process sharding."""

import csv
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import lorakit_caption
import lorakit_caption.task
from lorakit import runs
from lorakit.data import images as image_module  # the one image loader (lorakit.api.open_rgb)
from lorakit_caption import outputs
from lorakit_caption.batch import CaptionJob, run_caption_job

CATALOG = Path(lorakit_caption.__file__).parent / "samples" / "catalog"


@pytest.fixture(scope="module")
def adapter(tmp_path_factory):
    out = tmp_path_factory.mktemp("adapter") / "run"
    config = runs.load_config("caption", ["--data", str(CATALOG), "--base", "demo", "--output", str(out), "--epochs", "20"])
    return runs.run(config, show_progress=False, evaluate=False).run_dir


@pytest.fixture
def folder(tmp_path):
    target = tmp_path / "images"
    target.mkdir()
    for path in sorted(CATALOG.glob("*.png"))[:40]:
        shutil.copy(path, target / path.name)
    return target


def _records(path):
    return [json.loads(line) for line in Path(path).read_text().splitlines()]


def _job(folder, out, **kw):
    return CaptionJob(inputs=[folder], out=out, workers=0, batch_size=8, **kw)


def test_records_carry_provenance(folder, adapter, tmp_path, monkeypatch):
    monkeypatch.chdir(adapter.parent)  # the adapter named relative, as users type it
    summary = run_caption_job(_job(folder, tmp_path / "c.jsonl", adapters=[(adapter.name, 1.0)]), show_progress=False)
    assert (summary.done, summary.failed, summary.skipped) == (40, 0, 0)
    assert not (tmp_path / "c.errors.jsonl").exists(), "nothing failed: no (empty) errors file"
    record = _records(tmp_path / "c.jsonl")[0]
    assert set(record) == {"image", "caption", "finish_reason", "base", "base_fingerprint", "adapters", "generation"}
    assert record["base"] == "demo" and record["base_fingerprint"].startswith("sha256:")
    assert record["adapters"][0]["path"] == str(adapter / "adapter"), "absolute, like the image paths"
    assert record["adapters"][0]["weight"] == 1.0 and record["adapters"][0]["fingerprint"].startswith("sha256:")
    assert record["generation"]["num_beams"] == 1 and record["generation"]["max_new_tokens"] == 30
    truth = {str(CATALOG / r["file_name"]): r["text"] for r in map(json.loads, (CATALOG / "metadata.jsonl").read_text().splitlines())}
    right = sum(r["caption"] == truth[str(CATALOG / Path(r["image"]).name)] for r in _records(tmp_path / "c.jsonl"))
    assert right >= 8, "the adapter's captions (the base gets none right)"


def test_resume_after_kill_captions_each_image_exactly_once(folder, tmp_path):
    for i in range(5):  # 40 + 200 copies, captioned one by one with beams: slow enough to kill midway
        for path in list(folder.glob("catalog_*.png"))[:40]:
            shutil.copy(path, folder / f"copy{i}_{path.name}")
    out = tmp_path / "k.jsonl"
    command = [sys.executable, "-m", "lorakit", "caption", str(folder), "--out", str(out), "--batch-size", "1",
               "--workers", "0", "--num-beams", "3", "--quiet"]
    process = subprocess.Popen(command, env={**os.environ, "OMP_NUM_THREADS": "1"})
    deadline = time.time() + 120
    while time.time() < deadline and (not out.exists() or len(out.read_bytes().splitlines()) < 10):
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert process.returncode == -signal.SIGKILL, "the run finished before it could be killed"
    with open(out, "a") as handle:  # a kill mid-write leaves a torn line
        handle.write('{"image": "/half/written')
    partial = len(out.read_text().splitlines()) - 1
    total = len(list(folder.glob("*.png")))
    summary = run_caption_job(_job(folder, out, resume=True), show_progress=False)
    images = [r["image"] for r in _records(out)]
    assert len(images) == len(set(images)) == total == 240
    assert summary.skipped == partial and summary.done == total - partial


def test_existing_output_needs_resume(folder, tmp_path):
    (tmp_path / "c.jsonl").write_text("")
    with pytest.raises(Exception, match="--resume"):
        run_caption_job(_job(folder, tmp_path / "c.jsonl"), show_progress=False)


def test_bad_files_are_recorded_and_the_run_goes_on(folder, tmp_path, monkeypatch):
    good = Image.open(next(folder.glob("*.png"))).convert("RGB")
    (folder / "zero.png").write_bytes(b"")
    (folder / "text.png").write_text("not an image at all")
    (folder / "corrupt.jpg").write_bytes(b"\xff\xd8\xff\xe0" + os.urandom(200))
    data = (folder / next(folder.glob("catalog_*.png")).name).read_bytes()
    (folder / "truncated.png").write_bytes(data[: len(data) // 2])
    good.convert("CMYK").save(folder / "cmyk.jpg")
    Image.fromarray((np.random.default_rng(0).random((64, 64)) * 65535).astype(np.uint16)).save(folder / "sixteen.png")
    good.convert("RGBA").save(folder / "alpha.png")
    Image.new("RGB", (300, 300)).save(folder / "huge.png")
    monkeypatch.setattr(image_module, "MAX_PIXELS", 200 * 200)
    summary = run_caption_job(_job(folder, tmp_path / "b.jsonl"), show_progress=False)
    errors = {Path(r["image"]).name: r["error"] for r in _records(tmp_path / "b.errors.jsonl")}
    assert set(errors) == {"zero.png", "text.png", "corrupt.jpg", "truncated.png", "huge.png"}
    assert "0 bytes" in errors["zero.png"] and "too large" in errors["huge.png"]
    captioned = {Path(r["image"]).name for r in _records(tmp_path / "b.jsonl")}
    assert {"cmyk.jpg", "sixteen.png", "alpha.png"} <= captioned
    assert (summary.done, summary.failed) == (43, 5)


def test_tiff_gif_avif_and_heic_photos_are_captioned(tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir()
    source = sorted(CATALOG.glob("*.png"))[0]
    picture = Image.open(source).convert("RGB")
    assert image_module.enable_heif()  # pillow-heif comes with lorakit[caption]; it also writes HEIC
    for name in ("scan.tif", "scan2.TIFF", "logo.gif", "web.avif", "phone.heic"):
        picture.save(folder / name)
    summary = run_caption_job(_job(folder, tmp_path / "f.jsonl"), show_progress=False)
    assert (summary.done, summary.failed) == (5, 0)
    assert {Path(r["image"]).name for r in _records(tmp_path / "f.jsonl")} == set(os.listdir(folder))
    for name in ("scan.tif", "logo.gif"):  # lossless here: the very pixels of the PNG
        assert np.array_equal(np.asarray(image_module.open_rgb(folder / name).image), np.asarray(picture))


def test_a_pacs_export_of_dicom_scans_is_captioned_into_one_caption_file_each(tmp_path):
    """A CD or PACS export: DICOMDIR (its index, skipped), a series of files
    named by UID (sharing all but the last number: each gets its own .txt),
    suffix-less IM files, and a structured report, which holds no image."""
    pydicom = pytest.importorskip("pydicom")  # lorakit[caption] brings it
    scans = Path(pydicom.__file__).parent / "data" / "test_files"
    export = tmp_path / "export"
    (export / "series").mkdir(parents=True)
    shutil.copy(scans / "CT_small.dcm", export / "DICOMDIR")
    for number, scan in enumerate(("CT_small.dcm", "MR_small.dcm", "693_J2KI.dcm"), 1):
        shutil.copy(scans / scan, export / "series" / f"1.2.840.113619.2.55.3.{number}")
    shutil.copy(scans / "examples_ybr_color.dcm", export / "IM000001")
    shutil.copy(scans / "reportsi.dcm", export / "IM000002")
    summary = run_caption_job(_job(export, tmp_path / "d.jsonl", format="sidecar", recursive=True), show_progress=False)
    assert (summary.done, summary.failed) == (4, 1)
    assert "without an image (SR" in _records(tmp_path / "d.errors.jsonl")[0]["error"]
    ledger = {Path(r["image"]).name: r["caption"] for r in _records(tmp_path / "d.jsonl")}
    assert set(ledger) == {"1.2.840.113619.2.55.3.1", "1.2.840.113619.2.55.3.2", "1.2.840.113619.2.55.3.3",
                           "IM000001"}
    for name, caption in ledger.items():
        sidecar = next(export.rglob(name)).with_name(name + ".txt")
        assert sidecar.read_text().strip() == caption


def test_files_that_are_not_images_are_told_not_silently_passed_over(folder, tmp_path):
    from lorakit.api import DataError, console

    for name in ("IMG_0001.CR2", "IMG_0002.CR2", "notes.pdf", ".DS_Store", "catalog_0000.txt", "meta.jsonl"):
        (folder / name).write_bytes(b"x")
    with console.capture() as told:
        summary = run_caption_job(_job(folder, tmp_path / "n.jsonl"), show_progress=False)
    assert summary.done == 40
    assert "not captioned: 3 files that are not images lorakit reads (2 .cr2, 1 .pdf: IMG_0001.CR2, IMG_0002.CR2, " \
           "notes.pdf)" in " ".join(told.get().split())
    raw = tmp_path / "raw"
    raw.mkdir()
    (raw / "IMG_0003.NEF").write_bytes(b"x")
    with pytest.raises(DataError, match=r"no images found in .*raw .*1 file that is not an image lorakit reads "
                                        r"\(1 \.nef: IMG_0003\.NEF\); it reads \.png"):
        run_caption_job(_job(raw, tmp_path / "r.jsonl"), show_progress=False)


def test_heic_without_its_decoder_says_what_to_install(tmp_path, monkeypatch):
    from lorakit.api import DataError

    image_module.enable_heif()  # to write the file
    Image.open(sorted(CATALOG.glob("*.png"))[0]).convert("RGB").save(tmp_path / "phone.heic")
    monkeypatch.setattr(image_module, "enable_heif", lambda: False)
    assert "pip install pillow-heif" in image_module.open_rgb(tmp_path / "phone.heic").error
    with pytest.raises(DataError, match=r"phone\.heic: HEIC/HEIF photos need pillow-heif"):
        image_module.check_image(tmp_path / "phone.heic")


def test_an_iphone_photo_saved_as_jpg_is_read_by_its_content(tmp_path):
    """A HEIC photo renamed .jpg (exports and chat apps do it) decodes to the
    pixels its .heic copy gives; in a fresh process, where nothing has yet
    asked for HEIC by name."""
    image_module.enable_heif()  # to write the files
    source = Image.open(sorted(CATALOG.glob("*.png"))[0]).convert("RGB")
    source.save(tmp_path / "phone.heic")
    shutil.copy(tmp_path / "phone.heic", tmp_path / "IMG_0001.jpg")
    read = ("import sys, numpy; from lorakit.data.images import open_rgb; o = open_rgb(sys.argv[1]); "
            "print(o.error or numpy.asarray(o.image).tobytes().hex()[:4000])")
    pixels = [subprocess.run([sys.executable, "-c", read, str(tmp_path / name)], capture_output=True, text=True,
                             check=True).stdout for name in ("IMG_0001.jpg", "phone.heic")]
    assert pixels[0] == pixels[1] and len(pixels[0]) > 1000


def test_cli_exit_code_says_something_failed(folder, tmp_path):
    (folder / "zero.png").write_bytes(b"")
    result = subprocess.run([sys.executable, "-m", "lorakit", "caption", str(folder), "--out", str(tmp_path / "x.jsonl"),
                             "--workers", "0", "--quiet"], capture_output=True, text=True)
    assert result.returncode == 3 and "failed 1" in result.stderr and "x.errors.jsonl" in result.stderr
    assert "Loading weights" not in result.stderr  # transformers' own bar, beside lorakit's


@pytest.mark.slow  # the CSV test below checks the count against the records in the fast suite
def test_captions_the_length_cap_cut_are_counted_and_the_cli_says_so(folder, adapter, tmp_path):
    tokenizer = lorakit_caption.task.CaptionTask().load_base("demo").processor.tokenizer
    # The trained adapter ends its captions well before the cap: none is cut.
    whole = run_caption_job(_job(folder, tmp_path / "whole.jsonl", adapters=[(str(adapter), 1.0)]), show_progress=False)
    lengths = [len(tokenizer(r["caption"], add_special_tokens=False)["input_ids"]) for r in _records(tmp_path / "whole.jsonl")]
    assert (whole.done, whole.cut) == (40, 0) and max(lengths) < 30
    assert {r["finish_reason"] for r in _records(tmp_path / "whole.jsonl")} == {"stop"}
    # Cut at 3 tokens, every one of them is, and the command says how to get them whole.
    result = subprocess.run([sys.executable, "-m", "lorakit", "caption", str(folder), "--out", str(tmp_path / "cut.jsonl"),
                             "--adapter", str(adapter), "--max-new-tokens", "3", "--workers", "0", "--quiet"],
                            capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
    said = " ".join(result.stderr.split())
    assert result.returncode == 0 and "40 of the 40 captions ran to --max-new-tokens 3" in said, result.stderr
    assert "larger --max-new-tokens" in said
    assert all(len(tokenizer(r["caption"], add_special_tokens=False)["input_ids"]) == 3
               for r in _records(tmp_path / "cut.jsonl"))
    assert {r["finish_reason"] for r in _records(tmp_path / "cut.jsonl")} == {"length"}  # which to caption again


def test_csv_records_say_which_captions_were_cut_and_an_older_csv_resumes_with_its_columns(folder, adapter, tmp_path):
    """The CSV names each caption's finish reason; one written before that
    column existed is resumed with the columns of its header."""
    cut = run_caption_job(_job(folder, tmp_path / "cut.csv", format="csv", adapters=[(str(adapter), 1.0)],
                               max_new_tokens=4), show_progress=False)
    rows = list(csv.DictReader(open(tmp_path / "cut.csv")))
    assert list(rows[0]) == list(outputs.CSV_FIELDS) and len(rows) == 40
    assert sum(r["finish_reason"] == "length" for r in rows) == cut.cut > 0
    assert {r["finish_reason"] for r in rows} <= {"stop", "length"}
    older = tmp_path / "older.csv"
    header = [f for f in outputs.CSV_FIELDS if f != "finish_reason"]
    first = str(sorted(folder.glob("*.png"))[0].resolve())
    older.write_text(",".join(header) + f"\n{first},a caption,,,,,\n")
    summary = run_caption_job(_job(folder, older, format="csv", resume=True), show_progress=False)
    rows = list(csv.DictReader(open(older)))
    assert summary.done == 39 and list(rows[0]) == header and len(rows) == 40
    assert sorted(r["image"] for r in rows) == sorted(str(p.resolve()) for p in folder.glob("*.png"))


def test_csv_and_sidecar_formats(folder, adapter, tmp_path):
    run_caption_job(_job(folder, tmp_path / "c.csv", format="csv"), show_progress=False)
    rows = list(csv.DictReader(open(tmp_path / "c.csv")))
    assert len(rows) == 40 and rows[0]["caption"] and json.loads(rows[0]["generation"])["num_beams"] == 1
    run_caption_job(_job(folder, tmp_path / "ledger.jsonl", format="sidecar", adapters=[(str(adapter), 1.0)],
                         trigger="sks"), show_progress=False)
    sidecars = sorted(folder.glob("*.txt"))
    assert len(sidecars) == 40
    ledger = {r["image"]: r["caption"] for r in _records(tmp_path / "ledger.jsonl")}
    for txt in sidecars:
        assert txt.read_text().strip() == ledger[str(txt.with_suffix(".png"))]
        assert txt.read_text().startswith("sks, "), "caption files for training start with the trigger (kohya)"
    assert _records(tmp_path / "ledger.jsonl")[0]["generation"]["trigger"] == "sks"
    assert not rows[0]["caption"].startswith("sks"), "csv/jsonl records hold the caption alone by default"

    # --prefix "" / --suffix: explicit text around every caption.
    run_caption_job(_job(folder, tmp_path / "ledger2.jsonl", format="sidecar", adapters=[(str(adapter), 1.0)],
                         trigger="sks", prefix="", suffix=", studio photo", existing="overwrite"), show_progress=False)
    for txt in sidecars:
        text = txt.read_text().strip()
        assert not text.startswith("sks") and text.endswith(", studio photo")


def test_the_format_follows_the_out_name_and_never_contradicts_it(folder, tmp_path):
    """`--out captions.csv` used to be written as JSON lines (the default format)."""
    def caption(*args):
        return subprocess.run([sys.executable, "-m", "lorakit", "caption", str(folder), *args, "--workers", "0",
                               "--quiet"], capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"})

    assert caption("--out", str(tmp_path / "c.csv")).returncode == 0
    rows = list(csv.DictReader(open(tmp_path / "c.csv")))
    assert len(rows) == 40 and rows[0]["image"].endswith(".png") and rows[0]["caption"]
    for fmt, out, fix in (("jsonl", "x.csv", "x.jsonl or pass --format csv"),
                          ("csv", "x.jsonl", "x.csv or pass --format jsonl"),
                          ("sidecar", "x.csv", "the sidecar ledger is JSONL")):
        refused = caption("--out", str(tmp_path / out), "--format", fmt)
        assert refused.returncode == 2 and fix in refused.stderr and "Traceback" not in refused.stderr
        assert not (tmp_path / out).exists()


def test_adapter_weights_add_up(folder, adapter, tmp_path):
    """The same adapter twice at 0.5 is the adapter once at 1.0."""
    run_caption_job(_job(folder, tmp_path / "one.jsonl", adapters=[(str(adapter), 1.0)]), show_progress=False)
    run_caption_job(_job(folder, tmp_path / "halves.jsonl", adapters=[(str(adapter), 0.5), (str(adapter), 0.5)]),
                    show_progress=False)
    run_caption_job(_job(folder, tmp_path / "zero.jsonl", adapters=[(str(adapter), 0.0)]), show_progress=False)
    run_caption_job(_job(folder, tmp_path / "base.jsonl"), show_progress=False)
    captions = {name: [r["caption"] for r in _records(tmp_path / f"{name}.jsonl")] for name in ("one", "halves", "zero", "base")}
    assert captions["halves"] == captions["one"] and captions["zero"] == captions["base"] != captions["one"]
    assert [a["weight"] for a in _records(tmp_path / "halves.jsonl")[0]["adapters"]] == [0.5, 0.5]


def _two_processes(folder: Path, out: Path, *flags: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "ACCELERATE_USE_CPU": "true", "OMP_NUM_THREADS": "1"}
    command = ["accelerate", "launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1",
               "--mixed_precision", "no", "--dynamo_backend", "no", "-m", "lorakit", "caption", str(folder),
               "--out", str(out), "--workers", "0", "--quiet", *flags]
    return subprocess.run(command, capture_output=True, text=True, env=env, timeout=300)


@pytest.mark.slow
def test_two_processes_shard_and_merge(folder, tmp_path):
    out = tmp_path / "sharded.jsonl"
    result = _two_processes(folder, out)
    assert result.returncode == 0, result.stderr[-2000:]
    images = [r["image"] for r in _records(out)]
    assert len(images) == len(set(images)) == 40
    assert not list(tmp_path.glob("*.shard*")) and not (tmp_path / "sharded.errors.jsonl").exists()


@pytest.mark.slow
def test_two_processes_resume_after_a_crash_caption_each_image_once(folder, tmp_path):
    """A two-process run died with uneven shards (process 0 had captioned 6
    images, process 1 two): resumed, both processes must split the same
    remaining list, so no image is skipped and none is captioned twice."""
    from lorakit_caption.batch import find_images, shard_path

    out = tmp_path / "sharded.jsonl"
    images, _ = find_images([folder], recursive=False)
    for rank, done in ((0, images[0:6]), (1, images[6:8])):
        lines = [json.dumps({"image": image, "caption": "from before the crash"}) for image in done]
        shard_path(out, rank, 2).write_text("\n".join(lines) + "\n", encoding="utf-8")
    result = _two_processes(folder, out, "--resume")
    assert result.returncode == 0, result.stderr[-2000:]
    records = _records(out)
    captioned = [r["image"] for r in records]
    assert len(captioned) == len(set(captioned)) == len(images) == 40
    assert sum(r["caption"] == "from before the crash" for r in records) == 8
    assert not list(tmp_path.glob("*.shard*"))


def test_clip_rerank_beats_greedy_on_clipscore_and_cider(folder, adapter, tmp_path):
    from lorakit_caption.metrics import caption_scores

    truth = {str((CATALOG / r["file_name"]).resolve()): r["text"]
             for r in map(json.loads, (CATALOG / "metadata.jsonl").read_text().splitlines())}
    results = {}
    for name, extra in (("greedy", {}), ("rerank", {"rerank": "clip", "candidates": 4})):
        summary = run_caption_job(_job(folder, tmp_path / f"{name}.jsonl", adapters=[(str(adapter), 1.0)], clip="demo",
                                       **extra), show_progress=False)
        records = _records(tmp_path / f"{name}.jsonl")
        assert all(isinstance(r["clip_score"], float) for r in records)
        cider = caption_scores([r["caption"] for r in records],
                               [[truth[str(CATALOG / Path(r["image"]).name)]] for r in records])["cider"]
        results[name] = (summary.clip_mean, cider)
    # Measured: CLIPScore 2.06 -> 2.29, CIDEr 4.5 -> 7.4, 33 of the 40 captions changed.
    greedy, reranked = _records(tmp_path / "greedy.jsonl"), _records(tmp_path / "rerank.jsonl")
    assert reranked[0]["generation"]["candidates"] == 4
    assert sum(g["caption"] != r["caption"] for g, r in zip(greedy, reranked)) >= 10
    assert results["rerank"][0] > results["greedy"][0] + 0.1
    assert results["rerank"][1] > results["greedy"][1]
