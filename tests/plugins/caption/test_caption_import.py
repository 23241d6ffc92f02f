"""`lorakit caption-import`: a Hugging Face captioning dataset on disk (Hub
parquet shards, save_to_disk arrow files, one parquet file) becomes a
caption folder that `lorakit run caption` reads; bad input is named and
leaves nothing behind."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from cli_failure import fails_cleanly, files_under
from hf_dataset import IMAGE, TEXT, TEXTS, image_cell, write_hub_dataset, write_saved_dataset
from lorakit.api import ConfigError, DataError, OutputError
from lorakit_caption.data import read_caption_folder
from lorakit_caption.hf_import import import_captions

pytest.importorskip("pyarrow")  # in lorakit[test]; users are told to pip install it

CATALOG = Path(__file__).resolve().parents[3] / "samples" / "caption" / "catalog"


def catalog_rows(count: int, start: int = 0) -> list[dict]:
    """Rows of the sample catalog: the PNG's bytes and its caption."""
    captions = {json.loads(line)["file_name"]: json.loads(line)["text"]
                for line in (CATALOG / "metadata.jsonl").read_text().splitlines()}
    names = sorted(captions)[start:start + count]
    return [{"image": image_cell((CATALOG / name).read_bytes(), name), "text": captions[name]} for name in names]


def metadata(folder: Path) -> list[dict]:
    return [json.loads(line) for line in (folder / "metadata.jsonl").read_text().splitlines()]


def test_a_hub_dataset_in_shards_becomes_a_caption_folder_of_its_own_bytes(tmp_path):
    train, test = catalog_rows(12), catalog_rows(4, start=12)
    dataset = write_hub_dataset(tmp_path / "ds", {"train": train, "test": test}, {"image": IMAGE, "text": TEXT},
                                shards=2)
    summary = import_captions(dataset, tmp_path / "out", show_progress=False)
    assert (summary.records, summary.files, summary.skipped) == (12, 12, {})
    rows = metadata(tmp_path / "out")
    assert [(r["file_name"], r["text"]) for r in rows] == [(r["image"]["path"], r["text"]) for r in train]
    for row in train:  # the bytes as stored, under the dataset's own names
        assert (tmp_path / "out" / row["image"]["path"]).read_bytes() == row["image"]["bytes"]
    assert len(read_caption_folder(tmp_path / "out")) == 12
    assert len(metadata(Path(import_captions(dataset, tmp_path / "t", split="test", show_progress=False).out))) == 4


def test_shards_are_read_by_column_name_and_one_of_other_columns_is_named(tmp_path):
    train = catalog_rows(4)
    dataset = write_hub_dataset(tmp_path / "ds", {"train": train}, {"image": IMAGE, "text": TEXT}, shards=2)
    second = dataset / "data" / "train-00001-of-00002.parquet"
    reordered = write_hub_dataset(tmp_path / "reordered", {"train": train[2:]}, {"text": TEXT, "image": IMAGE})
    (reordered / "data" / "train-00000-of-00001.parquet").replace(second)
    summary = import_captions(dataset, tmp_path / "out", show_progress=False)  # it was refused: same columns
    assert summary.records == 4 and [r["text"] for r in metadata(tmp_path / "out")] == [r["text"] for r in train]
    other = write_hub_dataset(tmp_path / "other", {"train": [{**r, "label": "x"} for r in train[2:]]},
                              {"image": IMAGE, "text": TEXT, "label": TEXT})
    (other / "data" / "train-00000-of-00001.parquet").replace(second)
    with pytest.raises(DataError, match=r"do not share their columns: \S*train-00001-of-00002\.parquet adds label "
                                        r"\(against \S*train-00000-of-00002\.parquet: image, text\)"):
        import_captions(dataset, tmp_path / "again", show_progress=False)
    assert not (tmp_path / "again").exists()


def test_several_captions_a_row_repeated_images_and_rows_without_a_caption(tmp_path):
    rows = catalog_rows(3)
    data = [{"image": rows[0]["image"], "captions": ["a  red star", "a star"]},
            {"image": rows[1]["image"], "captions": []},  # no caption: skipped, its image not written
            {"image": rows[0]["image"], "captions": ["the same picture again"]},
            {"image": image_cell(rows[2]["image"]["bytes"]), "captions": [" "]}]  # no name, blank caption
    dataset = write_hub_dataset(tmp_path / "ds", {"train": data}, {"image": IMAGE, "captions": TEXTS})
    summary = import_captions(dataset, tmp_path / "out", show_progress=False)
    assert summary.skipped == {"rows without a caption": 2} and summary.files == 1
    assert [(r["file_name"], r["text"]) for r in metadata(tmp_path / "out")] == [
        ("catalog_0000.png", "a red star"), ("catalog_0000.png", "a star"),
        ("catalog_0000.png", "the same picture again")]
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["catalog_0000.png", "metadata.jsonl"]


def test_a_saved_dataset_and_a_single_parquet_file_and_one_without_feature_types(tmp_path):
    rows = catalog_rows(5)
    saved = write_saved_dataset(tmp_path / "saved", {"train": rows, "validation": rows[:2]},
                                {"image": IMAGE, "text": TEXT})
    assert import_captions(saved, tmp_path / "a", split="validation", show_progress=False).records == 2
    with pytest.raises(DataError, match=r"no split 'test'; its splits: train, validation"):
        import_captions(saved, tmp_path / "x", split="test")
    bare = write_hub_dataset(tmp_path / "bare", {"train": rows}, {"image": IMAGE, "text": TEXT},
                             record_features=False)  # pandas' to_parquet: the image struct found by its shape
    single = next((bare / "data").glob("*.parquet"))
    assert import_captions(single, tmp_path / "b", show_progress=False).records == 5


def test_unnamed_images_get_numbered_names_with_the_suffix_of_their_format(tmp_path):
    import io

    jpeg = io.BytesIO()
    Image.new("RGB", (8, 8), (10, 200, 10)).save(jpeg, format="JPEG")
    rows = [{"image": image_cell(jpeg.getvalue()), "text": "green"},
            {"image": image_cell(catalog_rows(1)[0]["image"]["bytes"], "../../etc/x y.png"), "text": "star"}]
    dataset = write_hub_dataset(tmp_path / "ds", {"train": rows}, {"image": IMAGE, "text": TEXT})
    import_captions(dataset, tmp_path / "out", show_progress=False)
    assert [r["file_name"] for r in metadata(tmp_path / "out")] == ["000000.jpg", "x_y.png"]


def test_where_keeps_the_rows_of_a_split_a_column_marks(tmp_path):
    """Flickr30k on the Hub: one split, its Karpathy split in a column."""
    rows = [{**row, "split": ("train", "val", "test")[i % 3]} for i, row in enumerate(catalog_rows(9))]
    dataset = write_hub_dataset(tmp_path / "ds", {"test": rows}, {"image": IMAGE, "text": TEXT, "split": TEXT})
    summary = import_captions(dataset, tmp_path / "out", split="test", where=("split=train",), limit=2,
                              show_progress=False)
    assert [r["file_name"] for r in metadata(tmp_path / "out")] == ["catalog_0000.png", "catalog_0003.png"]
    assert summary.records == 2
    for bad, message in [("split", r"--where split: write COLUMN=VALUE"),
                         ("kind=x", r"--where kind=x: no column 'kind'; the dataset has image, text, split")]:
        with pytest.raises(ConfigError, match=message):
            import_captions(dataset, tmp_path / "o2", split="test", where=(bad,))
    with pytest.raises(DataError, match=r"no rows of split 'test' with split=dev could be imported"):
        import_captions(dataset, tmp_path / "o2", split="test", where=("split=dev",), show_progress=False)
    assert not (tmp_path / "o2").exists()


def test_bad_datasets_are_named_and_leave_nothing_behind(tmp_path):
    rows = catalog_rows(3)
    dataset = write_hub_dataset(tmp_path / "ds", {"train": rows, "test": rows}, {"image": IMAGE, "text": TEXT})
    with pytest.raises(DataError, match=r"has no split 'validation'; its splits: test, train \(pass --split\)"):
        import_captions(dataset, tmp_path / "out", split="validation")
    with pytest.raises(ConfigError, match=r"--text-column label: no such column; the dataset has image, text"):
        import_captions(dataset, tmp_path / "out", text_column="label")
    broken = [*rows[:2], {"image": image_cell(b"not an image at all"), "text": "x"}]
    bad = write_hub_dataset(tmp_path / "bad", {"train": broken}, {"image": IMAGE, "text": TEXT})
    with pytest.raises(DataError, match=r"train-00000-of-00001\.parquet row 2: its image is not one Pillow can read") \
            as caught:
        import_captions(bad, tmp_path / "out", show_progress=False)
    assert "BytesIO" not in str(caught.value)  # Pillow's message named its in-memory file object
    paths = write_hub_dataset(tmp_path / "paths", {"train": [{"image": {"bytes": None, "path": "a.png"}, "text": "x"}]},
                              {"image": IMAGE, "text": TEXT})
    with pytest.raises(DataError, match=r"row 0: image holds only a path \(a\.png\), not the file"):
        import_captions(paths, tmp_path / "out", show_progress=False)
    two = write_hub_dataset(tmp_path / "two", {"train": [{**rows[0], "mask": rows[1]["image"]}]},
                            {"image": IMAGE, "mask": IMAGE, "text": TEXT})
    with pytest.raises(ConfigError, match=r"several image columns \(image, mask\); name one with --image-column"):
        import_captions(two, tmp_path / "out")
    with pytest.raises(ConfigError, match=r"--text-column mask holds files \(Image\), not the caption"):
        import_captions(two, tmp_path / "out", image_column="image", text_column="mask")  # was "rows without a caption"
    named = write_hub_dataset(tmp_path / "named", {"train": [{"filepath": "train2014/1.jpg", "sentences": ["a cat"]}]},
                              {"filepath": TEXT, "sentences": TEXTS})  # COCO Karpathy's: names, not images
    with pytest.raises(ConfigError, match=r"no image column among filepath, sentences: the dataset names its images rather"):
        import_captions(named, tmp_path / "out")
    with pytest.raises(ConfigError, match=r"--image-column filepath holds string, not images; the dataset names"):
        import_captions(named, tmp_path / "out", image_column="filepath")
    from hf_dataset import AUDIO

    voices = write_hub_dataset(tmp_path / "voices", {"train": [{"audio": image_cell(b"RIFF"), "text": "hi"}]},
                               {"audio": AUDIO, "text": TEXT})  # it said the dataset names its images
    with pytest.raises(ConfigError, match=r"no image column among audio, text: the dataset holds audio files "
                                          r"\(audio\), not images; it is for another importer"):
        import_captions(voices, tmp_path / "out")
    assert not (tmp_path / "out").exists() and files_under(tmp_path).isdisjoint({"out"})
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".out")], "no temporary folder left"


def test_an_earlier_import_is_replaced_only_when_asked_and_nothing_else_ever(tmp_path):
    """--overwrite deleted the dataset itself (--out naming its folder) and files of the user's beside an import."""
    dataset = write_hub_dataset(tmp_path / "ds", {"train": catalog_rows(3)}, {"image": IMAGE, "text": TEXT})
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "mine.txt").write_text("keep")
    with pytest.raises(OutputError, match=r"out already exists; pass another --out, or --overwrite"):
        import_captions(dataset, tmp_path / "out")
    with pytest.raises(OutputError, match=r"out holds mine.txt, which no import writes: --overwrite replaces an "
                                          "earlier import only"):
        import_captions(dataset, tmp_path / "out", overwrite=True, show_progress=False)
    assert (tmp_path / "out" / "mine.txt").read_text() == "keep"
    (tmp_path / "out" / "mine.txt").unlink()
    assert import_captions(dataset, tmp_path / "out", show_progress=False).records == 3
    assert import_captions(dataset, tmp_path / "out", overwrite=True, show_progress=False).records == 3
    before = files_under(tmp_path / "ds")
    for out in (tmp_path / "ds", tmp_path):  # the dataset's own folder, or one above it
        with pytest.raises(OutputError, match="holds the dataset being imported .*: --overwrite would delete it"):
            import_captions(dataset, out, overwrite=True, show_progress=False)
    assert files_under(tmp_path / "ds") == before


def test_the_command_imports_and_says_what_it_wrote_or_one_error_line(tmp_path):
    dataset = write_hub_dataset(tmp_path / "ds", {"train": catalog_rows(6)}, {"image": IMAGE, "text": TEXT})
    done = subprocess.run([sys.executable, "-m", "lorakit", "caption-import", str(dataset), "--out",
                           str(tmp_path / "out"), "--limit", "4", "--quiet"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert f"4 captions of 4 images written to {tmp_path / 'out'}" in " ".join(done.stderr.split())
    fails_cleanly("caption-import", dataset, "--out", tmp_path / "o2", "--split", "test", names=("no split 'test'",))
    fails_cleanly("caption-import", tmp_path / "nothing", "--out", tmp_path / "o3", names=("does not exist",))


def test_without_pyarrow_the_import_says_what_to_install(tmp_path, monkeypatch):
    dataset = write_hub_dataset(tmp_path / "ds", {"train": catalog_rows(1)}, {"image": IMAGE, "text": TEXT})
    monkeypatch.setitem(sys.modules, "pyarrow", None)  # as if not installed
    with pytest.raises(DataError, match=r"reading a Hugging Face dataset needs pyarrow: pip install pyarrow"):
        import_captions(dataset, tmp_path / "out")
