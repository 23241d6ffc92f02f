"""Import the VQA v2 file pair (questions JSON + annotations JSON) into a
lorakit VQA folder: ``questions.jsonl`` written beside the images.

    lorakit vqa-import --questions v2_OpenEnded_mscoco_val2014_questions.json \\
        --annotations v2_mscoco_val2014_annotations.json --images val2014/

Images are found by their COCO id (``COCO_val2014_000000000042.jpg`` or
``42.jpg``); questions whose image is missing are counted and skipped.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

from lorakit.api import DataError, OutputError, atomic_write_text, is_image, list_files, require_folder

_ID = re.compile(r"(\d+)$")


@dataclass
class ImportSummary:
    written: int
    missing_images: int
    path: Path


def import_vqa_v2(questions: Path, annotations: Path, images: Path, limit: int | None = None,
                  overwrite: bool = False) -> ImportSummary:
    images = require_folder(Path(images), "COCO images")
    out = images / "questions.jsonl"
    if out.exists() and not overwrite:
        raise OutputError(f"{out} already exists; remove it or pass --overwrite")
    asked = {q["question_id"]: q for q in _load(questions, "questions")}
    by_id = _images_by_id(images)
    lines, missing = [], 0
    for annotation in _load(annotations, "annotations"):
        question = asked.get(annotation.get("question_id"))
        if question is None:
            raise DataError(f"{annotations}: question_id {annotation.get('question_id')} has no question in {questions}; "
                            "pass the questions file of the same split")
        image = by_id.get(int(annotation["image_id"]))
        if image is None:
            missing += 1
            continue
        answers = [a["answer"] for a in annotation.get("answers", []) if a.get("answer")]
        if not answers:
            continue
        lines.append(json.dumps({"image": image, "question": question["question"], "answers": answers}))
        if limit is not None and len(lines) >= limit:
            break
    if not lines:
        raise DataError(f"no question of {annotations} has its image in {images}; pass the images folder of the same split")
    atomic_write_text(out, "\n".join(lines) + "\n")
    return ImportSummary(len(lines), missing, out)


def _load(path: Path, key: str) -> list[dict]:
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DataError(f"{path} does not exist") from None
    except json.JSONDecodeError as exc:
        raise DataError(f"{path}: not valid JSON ({exc.msg} at line {exc.lineno})") from None
    if not isinstance(data, dict) or not isinstance(data.get(key), list):
        raise DataError(f'{path} is not a VQA v2 {key} file (no "{key}" list in it)')
    return data[key]


def _images_by_id(folder: Path) -> dict[int, str]:
    found = {}
    for path in list_files(folder):
        match = _ID.search(path.stem)
        if is_image(path) and match:
            found[int(match.group(1))] = str(path.relative_to(folder))
    return found
