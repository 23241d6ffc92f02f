"""Bad VQA input, as a user meets it on the command line: malformed VQA v2
files given to `lorakit vqa-import` and a questions.jsonl that is not UTF-8.
One message naming the file and the entry (or line), no traceback, nothing
written."""

import copy
import json

import pytest
from PIL import Image

from cli_failure import fails_cleanly, files_under

QUESTIONS = {"questions": [{"image_id": 42, "question": "Is it red?", "question_id": 420},
                           {"image_id": 7, "question": "How many?", "question_id": 70}]}
ANNOTATIONS = {"annotations": [{"question_id": 420, "image_id": 42, "answers": [{"answer": "yes"}]},
                               {"question_id": 70, "image_id": 7, "answers": [{"answer": "2"}]}]}


def _drop(entry, key):
    del entry[key]


#: name: (change to the parsed files (questions, annotations), words the error must hold)
BROKEN = {
    "question without question_id": (lambda q, a: _drop(q["questions"][0], "question_id"),
                                     ["q.json", "questions[0]", "'question_id'"]),
    "question not a string": (lambda q, a: q["questions"][1].update(question=5),
                              ["q.json", "questions[1]", "question is a number 5"]),
    "empty question": (lambda q, a: q["questions"][1].update(question="  "), ["q.json", "questions[1]", "question"]),
    "image_id a string": (lambda q, a: a["annotations"][1].update(image_id="7"),
                          ["a.json", "annotations[1]", "image_id"]),
    "question_id a boolean": (lambda q, a: q["questions"][0].update(question_id=True),
                              ["q.json", "questions[0]", "question_id"]),
    "entry not an object": (lambda q, a: q["questions"].append("Where?"), ["q.json", "questions[2]", "not an object"]),
    "annotation without answers": (lambda q, a: _drop(a["annotations"][0], "answers"),
                                   ["a.json", "annotations[0]", "'answers'"]),
    "answer not an object": (lambda q, a: a["annotations"][1].update(answers=["2"]),
                             ["a.json", "annotations[1]", "answers[0]"]),
    "no answers": (lambda q, a: a["annotations"][1].update(answers=[]), ["a.json", "annotations[1]", "no answer"]),
    "no questions list": (lambda q, a: q.update(questions={"420": "Is it red?"}), ["q.json", '"questions" list']),
    "question without annotation": (lambda q, a: a["annotations"].pop(1),
                                    ["q.json", "questions[1]", "no annotation", "a.json"]),
    "annotation without question": (lambda q, a: q["questions"].pop(0),
                                    ["a.json", "annotations[0]", "no question", "q.json"]),
    "image ids that differ": (lambda q, a: a["annotations"][1].update(image_id=42),
                              ["a.json", "annotations[1]", "questions[1]"]),
    "question twice": (lambda q, a: q["questions"].append(dict(q["questions"][0])),
                       ["q.json", "questions[2]", "twice"]),
    "no image for any question": (lambda q, a: [e.update(image_id=99) for e in q["questions"] + a["annotations"]],
                                  ["a.json", "annotations[0]", "image_id 99", "images"]),
}


@pytest.fixture
def images(tmp_path):
    folder = tmp_path / "images"
    folder.mkdir()
    for name in ("COCO_val2014_000000000042.jpg", "7.png"):
        Image.new("RGB", (8, 8), (200, 10, 10)).save(folder / name)
    return folder


def _import(tmp_path, images, questions: bytes, annotations: bytes, names: list[str]) -> str:
    (tmp_path / "q.json").write_bytes(questions)
    (tmp_path / "a.json").write_bytes(annotations)
    before = files_under(images)
    message = fails_cleanly("vqa-import", "--questions", tmp_path / "q.json", "--annotations", tmp_path / "a.json",
                            "--images", images, names=tuple(names))
    assert files_under(images) == before
    return message


def test_the_good_pair_imports(tmp_path, images):
    """The files the broken cases start from are themselves fine."""
    from lorakit_vqa.vqa_v2 import import_vqa_v2

    (tmp_path / "q.json").write_text(json.dumps(QUESTIONS))
    (tmp_path / "a.json").write_text(json.dumps(ANNOTATIONS))
    assert import_vqa_v2(tmp_path / "q.json", tmp_path / "a.json", images).written == 2


@pytest.mark.parametrize("change, names", BROKEN.values(), ids=BROKEN.keys())
def test_malformed_entries_are_named_by_file_and_entry(tmp_path, images, change, names):
    questions, annotations = copy.deepcopy(QUESTIONS), copy.deepcopy(ANNOTATIONS)
    change(questions, annotations)
    _import(tmp_path, images, json.dumps(questions).encode(), json.dumps(annotations).encode(), names)


@pytest.mark.parametrize("questions, names", [
    (b'[{"image_id": 42}]', ["q.json", "top level is a list"]),
    (b'{"questions": [\n{"image_id": 42,}]}', ["q.json:2", "not valid JSON"]),
    ('{"questions": [{"image_id": 42, "question": "Is it caf\u00e9 red?", "question_id": 420}]}'.encode("latin-1"),
     ["q.json:1", "not UTF-8", "save it as UTF-8"]),
], ids=["not an object", "not JSON", "not UTF-8"])
def test_files_that_are_not_vqa_v2_json_are_named(tmp_path, images, questions, names):
    _import(tmp_path, images, questions, json.dumps(ANNOTATIONS).encode(), names)


def test_the_key_error_of_the_issue_is_a_message(tmp_path, images):
    """The reported case: VQA v2 questions without question_id (a KeyError traceback before)."""
    questions = {"questions": [{"image_id": 42, "question": "Is it red?"}]}
    message = _import(tmp_path, images, json.dumps(questions).encode(), json.dumps(ANNOTATIONS).encode(),
                      ["q.json", "questions[0]", "question_id"])
    assert "KeyError" not in message


def test_a_latin_1_questions_file_is_named_with_its_line(tmp_path, images):
    rows = ['{"image": "7.png", "question": "How many?", "answer": "2"}',
            '{"image": "7.png", "question": "Is it a caf\u00e9?", "answer": "no"}']
    (images / "questions.jsonl").write_bytes("\n".join(rows).encode("latin-1"))
    fails_cleanly("train", "vqa", "--data", images, "--base", "demo", "--output", tmp_path / "run",
                  names=(f"{images / 'questions.jsonl'}:2", "not UTF-8", "save it as UTF-8"))
    assert not (tmp_path / "run").exists()
