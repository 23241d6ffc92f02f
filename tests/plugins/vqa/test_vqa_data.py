"""VQA folders and the VQA v2 importer: good input read, bad input named."""

import json
import shutil
from pathlib import Path

import pytest
from PIL import Image

from lorakit.errors import DataError, OutputError
from lorakit_vqa.data import read_vqa_folder
from lorakit_vqa.vqa_v2 import import_vqa_v2


def _image(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (8, 8), (200, 10, 10)).save(path)


@pytest.fixture
def folder(tmp_path):
    _image(tmp_path / "a.png")
    _image(tmp_path / "sub" / "b.png")
    return tmp_path


def _write(folder, *rows):
    (folder / "questions.jsonl").write_text("\n".join(r if isinstance(r, str) else json.dumps(r) for r in rows) + "\n")


def test_reads_single_and_multiple_answers(folder):
    _write(folder, {"image": "a.png", "question": "what colour?", "answer": "red"},
           {"image": "sub/b.png", "question": " how  many? ", "answers": ["2", "two", "3"]})
    examples = read_vqa_folder(folder)
    assert [(Path(e.image).name, e.question, e.answers) for e in examples] == [
        ("a.png", "what colour?", ("red",)), ("b.png", "how many?", ("2", "two", "3"))]


@pytest.mark.parametrize("row, message", [
    ({"image": "missing.png", "question": "q?", "answer": "x"}, "does not exist"),
    ({"image": "a.png", "question": "  ", "answer": "x"}, "empty question"),
    ({"image": "a.png", "question": "q?", "answers": []}, "no answer"),
    ({"image": "a.png", "question": "q?"}, "no answer"),
    ({"image": "../a.png", "question": "q?", "answer": "x"}, "outside the data folder"),
    ({"image": "/etc/passwd.png", "question": "q?", "answer": "x"}, "absolute path"),
    ('{"image": "a.png", "question": ', "not valid JSON"),
])
def test_bad_lines_are_named_with_file_and_line(folder, row, message):
    _write(folder, {"image": "a.png", "question": "fine?", "answer": "yes"}, row)
    with pytest.raises(DataError, match=message) as info:
        read_vqa_folder(folder)
    assert "questions.jsonl:2" in str(info.value)


def test_missing_questions_file(tmp_path):
    with pytest.raises(DataError, match="questions.jsonl"):
        read_vqa_folder(tmp_path)


def test_vqa_v2_import(tmp_path):
    images = tmp_path / "val2014"
    _image(images / "COCO_val2014_000000000042.jpg")
    _image(images / "7.png")
    (tmp_path / "q.json").write_text(json.dumps({"questions": [
        {"image_id": 42, "question": "Is it red?", "question_id": 420},
        {"image_id": 7, "question": "How many?", "question_id": 70},
        {"image_id": 99, "question": "Where?", "question_id": 990}]}))
    (tmp_path / "a.json").write_text(json.dumps({"annotations": [
        {"question_id": 420, "image_id": 42, "answers": [{"answer": "yes"}] * 10},
        {"question_id": 70, "image_id": 7, "answers": [{"answer": "2"}, {"answer": "two"}]},
        {"question_id": 990, "image_id": 99, "answers": [{"answer": "park"}]}]}))
    summary = import_vqa_v2(tmp_path / "q.json", tmp_path / "a.json", images)
    assert (summary.written, summary.missing_images) == (2, 1)
    examples = read_vqa_folder(images)
    assert [e.answers for e in examples] == [("yes",) * 10, ("2", "two")]
    with pytest.raises(OutputError, match="already exists"):
        import_vqa_v2(tmp_path / "q.json", tmp_path / "a.json", images)


def test_vqa_v2_import_refuses_wrong_files(tmp_path):
    (tmp_path / "q.json").write_text(json.dumps({"images": []}))
    with pytest.raises(DataError, match="not a VQA v2 questions file"):
        import_vqa_v2(tmp_path / "q.json", tmp_path / "q.json", tmp_path)


def test_held_out_questions_ask_about_images_training_never_saw(tmp_path):
    """VQA v2 asks several questions per image: the run's splits (test 0.15,
    validation 0.1, counted in images) never share an image."""
    from lorakit.data.splits import split_examples

    rows = []
    for i in range(40):
        _image(tmp_path / f"{i}.png")
        rows += [{"image": f"{i}.png", "question": q, "answer": "x"} for q in ("what?", "why?", "how many?")]
    _write(tmp_path, *rows)
    examples = read_vqa_folder(tmp_path)
    test, val, train = split_examples(examples, [0.15, 0.1], 0)
    assert (len(test), len(val), len(train)) == (18, 12, 90)  # 6, 4 and 30 images
    seen = {e.image for e in train}
    assert not seen & {e.image for e in test} and not seen & {e.image for e in val}


def test_questions_about_dicom_scans_name_them_as_the_export_does(tmp_path):
    pydicom = pytest.importorskip("pydicom")  # lorakit[vqa] brings it
    scans = Path(pydicom.__file__).parent / "data" / "test_files"
    (tmp_path / "study").mkdir()
    shutil.copy(scans / "CT_small.dcm", tmp_path / "study" / "IM000001")
    shutil.copy(scans / "MR_small.dcm", tmp_path / "mr.dcm")
    _write(tmp_path, {"image": "study/IM000001", "question": "which modality?", "answer": "ct"},
           {"image": "mr.dcm", "question": "which modality?", "answer": "mr"})
    assert [(Path(e.image).name, e.answers) for e in read_vqa_folder(tmp_path)] == [
        ("IM000001", ("ct",)), ("mr.dcm", ("mr",))]
    shutil.copy(scans / "rtplan.dcm", tmp_path / "plan.dcm")
    _write(tmp_path, {"image": "plan.dcm", "question": "which modality?", "answer": "rt"})
    with pytest.raises(DataError, match=r"plan\.dcm: a DICOM file without an image \(RTPLAN"):
        read_vqa_folder(tmp_path)
