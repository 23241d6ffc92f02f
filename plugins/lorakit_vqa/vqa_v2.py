"""Import the VQA v2 file pair (questions JSON + annotations JSON) into a
lorakit VQA folder: ``questions.jsonl`` written beside the images.

    lorakit vqa-import --questions v2_OpenEnded_mscoco_val2014_questions.json \\
        --annotations v2_mscoco_val2014_annotations.json --images val2014/

Images are found by their COCO id (``COCO_val2014_000000000042.jpg`` or
``42.jpg``); questions whose image is missing are counted and skipped.
Both files are checked entry by entry (keys, types, one annotation per
question, the same image on both sides) before anything is written, and a
problem is named by file and entry: ``annotations.json: annotations[12]``.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

from lorakit.api import DataError, OutputError, atomic_write_text, is_image, list_files, read_text, require_folder

_ID = re.compile(r"(\d+)$")
_WHOLE = (lambda v: isinstance(v, int) and not isinstance(v, bool), "a whole number")
_TEXT = (lambda v: isinstance(v, str) and bool(v.strip()), "a non-empty string")
_LIST = (lambda v: isinstance(v, list), "a list")
#: The fields every entry must have, as the VQA v2 files have them.
_QUESTION = {"question_id": _WHOLE, "image_id": _WHOLE, "question": _TEXT}
_ANNOTATION = {"question_id": _WHOLE, "image_id": _WHOLE, "answers": _LIST}
_FIX = "fix that entry, or use the file as downloaded from visualqa.org"


@dataclass
class ImportSummary:
    written: int
    missing_images: int
    path: Path


@dataclass
class _Pair:
    where: str  # the annotation entry, for messages
    image_id: int
    question: str
    answers: list[str]


def import_vqa_v2(questions: Path, annotations: Path, images: Path, limit: int | None = None,
                  overwrite: bool = False) -> ImportSummary:
    images = require_folder(Path(images), "COCO images")
    out = images / "questions.jsonl"
    if out.exists() and not overwrite:
        raise OutputError(f"{out} already exists; remove it or pass --overwrite")
    pairs = _pair(Path(questions), Path(annotations))
    if not pairs:
        raise DataError(f"{annotations} holds no annotations; pass the VQA v2 annotations file of the split")
    by_id = _images_by_id(images)
    lines, missing = [], []
    for pair in pairs:
        if limit is not None and len(lines) >= limit:
            break
        if pair.image_id not in by_id:
            missing.append(pair)
            continue
        lines.append(json.dumps({"image": by_id[pair.image_id], "question": pair.question, "answers": pair.answers}))
    if not lines:
        raise DataError(f"{missing[0].where}: image_id {missing[0].image_id} has no image in {images} (looked for "
                        f"COCO_<split>_{missing[0].image_id:012d}.jpg or {missing[0].image_id}.jpg), and no other "
                        "question's image is there either; pass the images folder of the same split")
    atomic_write_text(out, "\n".join(lines) + "\n")
    return ImportSummary(len(lines), len(missing), out)


def _pair(questions: Path, annotations: Path) -> list[_Pair]:
    """Every annotation with its question, checking that the two files pair up one to one."""
    asked: dict[int, tuple[str, dict]] = {}
    for where, entry in _entries(questions, "questions", _QUESTION):
        if entry["question_id"] in asked:
            raise DataError(f"{where}: question_id {entry['question_id']} appears twice (first at "
                            f"{asked[entry['question_id']][0]}); each question must appear once")
        asked[entry["question_id"]] = (where, entry)
    pairs, answered = [], set()
    for where, entry in _entries(annotations, "annotations", _ANNOTATION):
        question_id = entry["question_id"]
        if question_id not in asked:
            raise DataError(f"{where}: question_id {question_id} has no question in {questions}; "
                            "pass the questions file of the same split")
        if question_id in answered:
            raise DataError(f"{where}: question_id {question_id} is annotated twice; "
                            "each question needs exactly one annotation")
        question_where, question = asked[question_id]
        if entry["image_id"] != question["image_id"]:
            raise DataError(f"{where}: image_id {entry['image_id']} differs from the image_id {question['image_id']} "
                            f"of {question_where} (question_id {question_id}); pass the files of the same split")
        answered.add(question_id)
        pairs.append(_Pair(where, entry["image_id"], question["question"], _answers(where, entry["answers"])))
    for question_id, (where, _) in asked.items():
        if question_id not in answered:
            raise DataError(f"{where}: question_id {question_id} has no annotation in {annotations}; pass the "
                            "annotations file of the same split (test splits have none: use train or val)")
    return pairs


def _answers(where: str, answers: list) -> list[str]:
    for index, answer in enumerate(answers):
        if not isinstance(answer, dict) or not isinstance(answer.get("answer"), str):
            raise DataError(f"{where}: answers[{index}] is {_shown(answer)}, "
                            f'not an object like {{"answer": "yes"}}; {_FIX}')
    found = [a["answer"] for a in answers if a["answer"].strip()]
    if not found:
        raise DataError(f'{where}: no answer; "answers" must hold at least one {{"answer": "..."}}; {_FIX}')
    return found


def _entries(path: Path, key: str, fields: dict) -> list[tuple[str, dict]]:
    """``(where, entry)`` for each entry of the file's ``key`` list, every one
    an object with ``fields`` of the right types; ``where`` names file and entry."""
    found = []
    for index, entry in enumerate(_load(path, key)):
        where = f"{path}: {key}[{index}]"
        if not isinstance(entry, dict):
            raise DataError(f"{where} is {_shown(entry)}, not an object with {', '.join(fields)}; {_FIX}")
        for field, (valid, kind) in fields.items():
            if field not in entry:
                raise DataError(f"{where} has no {field!r} (every VQA v2 {key} entry has {', '.join(fields)}); {_FIX}")
            if not valid(entry[field]):
                raise DataError(f"{where}: {field} is {_shown(entry[field])}, not {kind}; {_FIX}")
        found.append((where, entry))
    return found


def _load(path: Path, key: str) -> list:
    try:
        data = json.loads(read_text(path))
    except FileNotFoundError:
        raise DataError(f"{path} does not exist; pass the VQA v2 {key} JSON file") from None
    except OSError as error:
        raise DataError(f"{path} cannot be read ({error.strerror or error}); pass the VQA v2 {key} JSON file") from None
    except json.JSONDecodeError as error:
        raise DataError(f"{path}:{error.lineno}: not valid JSON ({error.msg} at column {error.colno}); "
                        f"pass the VQA v2 {key} JSON file as downloaded") from None
    if not isinstance(data, dict) or not isinstance(data.get(key), list):
        top = f'no "{key}" list in it' if isinstance(data, dict) else f"its top level is {_shown(data)}, not an object"
        raise DataError(f"{path} is not a VQA v2 {key} file ({top}); pass the {key} JSON of the split")
    return data[key]


def _shown(value: object) -> str:
    """``value`` as a message shows it: short, with its JSON type."""
    text = json.dumps(value)
    if value is None:
        return "null"
    kind = {dict: "an object", list: "a list", str: "a string", bool: "a boolean"}.get(type(value), "a number")
    return kind if len(text) > 40 else f"{kind} {text}"


def _images_by_id(folder: Path) -> dict[int, str]:
    found = {}
    for path in list_files(folder):
        match = _ID.search(path.stem)
        if is_image(path) and match:
            found[int(match.group(1))] = str(path.relative_to(folder))
    return found
