"""Reading caption folders: the three layouts, and a DataError naming the file
for every kind of bad input."""

import json
import shutil
from pathlib import Path

import pytest
from caption_images import write_png

from lorakit.api import load_images
from lorakit.errors import DataError
from lorakit_caption.data import CaptionExample, read_caption_folder


def test_reads_metadata_jsonl(jsonl_folder):
    examples = read_caption_folder(jsonl_folder)
    assert [e.text for e in examples] == ["a red square", "a green square", "a blue square"]
    assert examples[0] == CaptionExample(str((jsonl_folder / "red.png").resolve()), "a red square")


def test_reads_metadata_csv(tmp_path):
    write_png(tmp_path / "imgs" / "a.png")
    (tmp_path / "metadata.csv").write_text('file_name,text\nimgs/a.png,"a red, square thing"\n')
    assert read_caption_folder(tmp_path) == [CaptionExample(str(tmp_path / "imgs" / "a.png"), "a red, square thing")]


def test_reads_metadata_csv_as_spreadsheets_save_it(tmp_path):
    """A spreadsheet's CSV: a byte-order mark, CRLF, semicolons (the comma is
    the decimal mark in many locales) and a cell of two lines, which was read
    with its words glued together ("oneline")."""
    for name in ("a.png", "b.png", "c.png"):
        write_png(tmp_path / name)
    text = 'file_name;text\r\na.png;"a mug, red\r\nside view"\r\nb.png;a blue bowl\r\nc.png;"a ""tall"" vase"\r\n'
    (tmp_path / "metadata.csv").write_bytes(b"\xef\xbb\xbf" + text.encode())
    assert [e.text for e in read_caption_folder(tmp_path)] == ["a mug, red side view", "a blue bowl", 'a "tall" vase']
    (tmp_path / "metadata.csv").write_text('file_name\ttext\na.png\t"one\nmore"\nb.png\ttwo\nc.png\t\n')
    assert "metadata.csv:5: empty caption" in _error(tmp_path)  # a row after a multi-line one is named by its line


def test_reads_sidecar_captions(tmp_path):
    write_png(tmp_path / "a.png")
    write_png(tmp_path / "sub" / "b.png")
    (tmp_path / "a.txt").write_text("first  caption\n")
    (tmp_path / "sub" / "b.txt").write_text("second caption")
    texts = [e.text for e in read_caption_folder(tmp_path)]
    assert texts == ["first caption", "second caption"]


def test_several_captions_for_one_image(jsonl_folder):
    with open(jsonl_folder / "metadata.jsonl", "a") as f:
        f.write(json.dumps({"file_name": "red.png", "text": "a crimson block"}) + "\n")
    examples = read_caption_folder(jsonl_folder)
    assert sum(e.image.endswith("red.png") for e in examples) == 2


def test_ignores_readme_and_hidden_files(jsonl_folder):
    (jsonl_folder / "README.md").write_text("notes")
    (jsonl_folder / ".DS_Store").write_text("x")
    assert len(read_caption_folder(jsonl_folder)) == 3


def _error(folder) -> str:
    with pytest.raises(DataError) as info:
        read_caption_folder(folder)
    return str(info.value)


def test_missing_folder(tmp_path):
    assert "nope" in _error(tmp_path / "nope")


def test_empty_folder(tmp_path):
    assert str(tmp_path) in _error(tmp_path)


def test_image_without_caption_in_metadata(jsonl_folder):
    write_png(jsonl_folder / "extra.png")
    message = _error(jsonl_folder)
    assert "extra.png" in message and "without caption" in message


def test_image_without_sidecar_caption(tmp_path):
    write_png(tmp_path / "a.png")
    message = _error(tmp_path)
    assert "a.png" in message and "a.txt" in message


def test_metadata_row_without_image(jsonl_folder):
    (jsonl_folder / "green.png").unlink()
    message = _error(jsonl_folder)
    assert "metadata.jsonl:2" in message and "green.png" in message


def test_a_name_matches_its_file_however_its_accents_are_encoded(tmp_path):
    """macOS names files with combining accents (NFD: "e" + U+0301); a caption
    file typed elsewhere spells "café" with one composed letter (NFC): the same
    name, byte for byte another, was "café photo.png does not exist"."""
    import unicodedata

    composed, combining = (unicodedata.normalize(form, "café photo.png") for form in ("NFC", "NFD"))
    assert composed != combining
    write_png(tmp_path / "sub" / combining)
    write_png(tmp_path / composed)
    rows = [{"file_name": f"sub/{composed}", "text": "a cup on a shelf"}, {"file_name": combining, "text": "a cup"}]
    (tmp_path / "metadata.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert read_caption_folder(tmp_path) == [CaptionExample(str(tmp_path / "sub" / combining), "a cup on a shelf"),
                                             CaptionExample(str(tmp_path / composed), "a cup")]


def test_sidecar_caption_without_image(tmp_path):
    write_png(tmp_path / "a.png")
    (tmp_path / "a.txt").write_text("a caption")
    (tmp_path / "orphan.txt").write_text("no image")
    assert "orphan.txt" in _error(tmp_path)


def test_corrupt_image(jsonl_folder):
    (jsonl_folder / "blue.png").write_bytes(b"not a png at all")
    assert "blue.png" in _error(jsonl_folder)


def test_truncated_image(jsonl_folder):
    from PIL import Image

    Image.effect_noise((64, 64), 50).convert("RGB").save(jsonl_folder / "red.png")
    data = (jsonl_folder / "red.png").read_bytes()
    (jsonl_folder / "red.png").write_bytes(data[: len(data) // 2])
    assert "red.png" in _error(jsonl_folder)


def test_unsupported_file_type(jsonl_folder):
    (jsonl_folder / "notes.docx").write_bytes(b"PK")
    assert "notes.docx" in _error(jsonl_folder)


def test_metadata_names_unsupported_type(tmp_path):
    (tmp_path / "clip.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42")
    (tmp_path / "metadata.jsonl").write_text(json.dumps({"file_name": "clip.mp4", "text": "x"}) + "\n")
    message = _error(tmp_path)
    assert "metadata.jsonl:1" in message and "clip.mp4" in message


@pytest.mark.parametrize("name", ["../outside.png", "/etc/passwd.png"])
def test_path_escaping_the_folder(tmp_path, name):
    folder = tmp_path / "data"
    write_png(folder / "a.png")
    write_png(tmp_path / "outside.png")
    rows = [{"file_name": "a.png", "text": "fine"}, {"file_name": name, "text": "escape"}]
    (folder / "metadata.jsonl").write_text("\n".join(json.dumps(r) for r in rows))
    message = _error(folder)
    assert "metadata.jsonl:2" in message and name in message


def test_empty_caption_in_metadata(jsonl_folder):
    (jsonl_folder / "metadata.jsonl").write_text(
        json.dumps({"file_name": "red.png", "text": "  "}) + "\n"
        + "\n".join(json.dumps({"file_name": n, "text": "x"}) for n in ("green.png", "blue.png"))
    )
    message = _error(jsonl_folder)
    assert "metadata.jsonl:1" in message and "red.png" in message


def test_empty_sidecar_caption(tmp_path):
    write_png(tmp_path / "a.png")
    (tmp_path / "a.txt").write_text("\n")
    assert "a.txt" in _error(tmp_path)


def test_unreadable_json_line(jsonl_folder):
    with open(jsonl_folder / "metadata.jsonl", "a") as f:
        f.write('{"file_name": "red.png", "text": oops}\n')
    assert "metadata.jsonl:4" in _error(jsonl_folder)


def test_a_voice_folder_given_as_caption_data_is_named_so(tmp_path):
    """It said to add a file_name,text header to the voice clips' metadata.csv, which would break them."""
    (tmp_path / "0001.wav").write_bytes(b"")
    (tmp_path / "metadata.csv").write_text("0001|My brother wanted a warm coat.|My brother wanted a warm coat.\n")
    assert "holds LJSpeech transcripts (id|text), not captions: this is a folder of voice clips" in _error(tmp_path)


def test_csv_without_text_column(tmp_path):
    write_png(tmp_path / "a.png")
    (tmp_path / "metadata.csv").write_text("file_name,caption\na.png,hello\n")
    message = _error(tmp_path)
    assert "metadata.csv:1" in message and "text" in message


def test_both_metadata_files(jsonl_folder):
    (jsonl_folder / "metadata.csv").write_text("file_name,text\n")
    assert "metadata.csv" in _error(jsonl_folder)


def test_examples_pickle(jsonl_folder):
    import copy
    import pickle  # only to prove DataLoader workers can receive examples

    examples = read_caption_folder(jsonl_folder)
    assert pickle.dumps(examples) and copy.deepcopy(examples) == examples  # deepcopy reduces as pickle does


def test_several_captions_of_one_image_stay_in_one_split(tmp_path):
    """A metadata file may caption one image several times (COCO has five):
    the splits count images, and held-out images are never trained on."""
    from lorakit.data.splits import split_examples

    rows = []
    for i in range(20):
        write_png(tmp_path / f"{i}.png")
        rows += [{"file_name": f"{i}.png", "text": f"photo {i} caption {k}"} for k in range(3)]
    (tmp_path / "metadata.jsonl").write_text("\n".join(map(json.dumps, rows)) + "\n")
    examples = read_caption_folder(tmp_path)
    test, train = split_examples(examples, [0.2], 0)
    assert (len(test), len(train)) == (12, 48)
    assert not {e.image for e in test} & {e.image for e in train}


def test_reads_dicom_scans_as_a_pacs_export_lays_them_out(tmp_path):
    """A CD or PACS export: suffix-less images, an index (DICOMDIR, skipped),
    captions written next to them."""
    pydicom = pytest.importorskip("pydicom")  # lorakit[caption] brings it
    scans = Path(pydicom.__file__).parent / "data" / "test_files"
    (tmp_path / "series2").mkdir()
    shutil.copy(scans / "CT_small.dcm", tmp_path / "IM000001")
    shutil.copy(scans / "MR_small.dcm", tmp_path / "series2" / "1.2.840.113619.2.55.3.604688")
    shutil.copy(scans / "CT_small.dcm", tmp_path / "DICOMDIR")
    (tmp_path / "IM000001.txt").write_text("axial ct of the spine")
    (tmp_path / "series2" / "1.2.840.113619.2.55.3.604688.txt").write_text("mr of the knee")
    examples = read_caption_folder(tmp_path)
    assert [(Path(e.image).name, e.text) for e in examples] == [
        ("IM000001", "axial ct of the spine"), ("1.2.840.113619.2.55.3.604688", "mr of the knee")]
    assert [image.size for image in load_images([e.image for e in examples])] == [(128, 128), (64, 64)]
