"""`lorakit vqa-import DATASET --out FOLDER`: a Hugging Face VQA dataset on
disk (VQA-RAD's or PathVQA's columns: image, question, answer; VQA v2's list
of annotator answers) becomes a VQA folder that `lorakit run vqa` reads."""

import io
import json
import subprocess
import sys

import pytest
from PIL import Image

from cli_failure import fails_cleanly
from hf_dataset import IMAGE, TEXT, image_cell, write_hub_dataset
from lorakit_vqa.data import read_vqa_folder
from lorakit_vqa.hf_import import import_vqa_dataset

pytest.importorskip("pyarrow")  # in lorakit[test]; users are told to pip install it


def png(color) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), color).save(buffer, format="PNG")
    return buffer.getvalue()


def questions(folder) -> list[dict]:
    return [json.loads(line) for line in (folder / "questions.jsonl").read_text().splitlines()]


def test_questions_about_shared_images_with_one_or_several_answers(tmp_path):
    scan, slide = image_cell(png((20, 20, 20)), "synpic100.jpg"), image_cell(png((200, 100, 150)))
    rows = [{"image": scan, "question": "is there  a fracture?", "answer": "No"},
            {"image": scan, "question": "which organ?", "answer": "brain"},
            {"image": slide, "question": "what stain?", "answer": ""}]  # no answer: skipped
    dataset = write_hub_dataset(tmp_path / "rad", {"train": rows, "test": rows[:1]},
                                {"image": IMAGE, "question": TEXT, "answer": TEXT})
    summary = import_vqa_dataset(dataset, tmp_path / "out", show_progress=False)
    assert (summary.records, summary.files, summary.skipped) == (2, 1, {"rows without an answer": 1})
    assert questions(tmp_path / "out") == [
        {"image": "synpic100.png", "question": "is there a fracture?", "answer": "No"},
        {"image": "synpic100.png", "question": "which organ?", "answer": "brain"}]
    examples = read_vqa_folder(tmp_path / "out")
    assert [e.answers for e in examples] == [("No",), ("brain",)]


def test_a_class_label_answer_is_written_as_its_name_not_its_number(tmp_path):
    """A yes/no dataset stores its answers as a ClassLabel: they were imported as "0" and "1"."""
    label = {"names": ["yes", "no"], "_type": "ClassLabel"}
    rows = [{"image": image_cell(png((200, 0, 0))), "question": "is it red?", "label": 0},
            {"image": image_cell(png((0, 0, 200))), "question": "is it red?", "label": 1}]
    dataset = write_hub_dataset(tmp_path / "yn", {"train": rows}, {"image": IMAGE, "question": TEXT, "label": label})
    import_vqa_dataset(dataset, tmp_path / "out", show_progress=False)
    assert [q["answer"] for q in questions(tmp_path / "out")] == ["yes", "no"]


def test_vqa_v2_annotator_answers_become_answers_scored_by_vqa_accuracy(tmp_path):
    answers = [{"answer": "2", "answer_confidence": "yes", "answer_id": 1},
               {"answer": "two", "answer_confidence": "maybe", "answer_id": 2}]
    rows = [{"image": image_cell(png((1, 2, 3)), "COCO_val2014_000000000042.jpg"), "question": "how many?",
             "answers": answers, "multiple_choice_answer": "2"}]
    dataset = write_hub_dataset(tmp_path / "v2", {"validation": rows},
                                {"image": IMAGE, "question": TEXT, "answers": None, "multiple_choice_answer": TEXT})
    import_vqa_dataset(dataset, tmp_path / "out", split="validation", show_progress=False)
    assert questions(tmp_path / "out")[0]["answers"] == ["2", "two"]
    import_vqa_dataset(dataset, tmp_path / "one", split="validation", answer_column="multiple_choice_answer",
                       show_progress=False)
    assert questions(tmp_path / "one")[0]["answer"] == "2"


def test_the_command_takes_a_dataset_or_the_vqa_v2_pair_never_both(tmp_path):
    rows = [{"image": image_cell(png((9, 9, 9))), "question": "what?", "answer": "a dot"}]
    dataset = write_hub_dataset(tmp_path / "ds", {"train": rows}, {"image": IMAGE, "question": TEXT, "answer": TEXT})
    done = subprocess.run([sys.executable, "-m", "lorakit", "vqa-import", str(dataset), "--out", str(tmp_path / "out"),
                           "--quiet"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "1 questions about 1 images written to" in " ".join(done.stderr.split())
    fails_cleanly("vqa-import", dataset, names=("with DATASET, pass --out FOLDER",))
    fails_cleanly("vqa-import", dataset, "--out", tmp_path / "o2", "--images", tmp_path, names=("not --images",))
    fails_cleanly("vqa-import", "--questions", "q.json", "--annotations", "a.json", "--images", tmp_path,
                  "--where", "split=train", names=("--where go with a DATASET folder, not with the VQA v2 pair",))
    fails_cleanly("vqa-import", names=("pass a Hugging Face DATASET folder with --out FOLDER, or the VQA v2 pair",))
    fails_cleanly("vqa-import", dataset, "--out", tmp_path / "o3", "--question-column", "query",
                  names=("--question-column query: no such column; the dataset has image, question, answer",))
    assert not (tmp_path / "o2").exists() and not (tmp_path / "o3").exists()
