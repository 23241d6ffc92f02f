"""What ``lorakit predict vqa`` answers: ``{"image", "question"}`` records.

From the command line::

    lorakit predict vqa --adapter RUN --image item.png --question "is it damaged?"
    lorakit predict vqa --adapter RUN a.png b.png --question "what is the damage?"
    lorakit predict vqa --adapter RUN --questions qs.jsonl --out answers.jsonl

``--image``/``--question`` pairs repeat; one question goes with every image,
and one image with every question (``--image a.png --question "what item?"
--question "is it damaged?"``).
A questions file holds one ``{"image": ..., "question": ...}`` object a line
(answers, if any, are ignored); its image paths are relative to the file's
folder, as in a data folder's ``questions.jsonl``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

from lorakit.api import ConfigError, DataError, check_image, read_jsonl


def command_line_questions(inputs: Sequence[str], flags: dict[str, Any]) -> list[dict[str, str]]:
    """Records from positional image paths and the ``--image``, ``--question``
    and ``--questions`` flags."""
    images = [*map(str, inputs), *map(str, _as_list(flags.get("image")))]
    questions = [_text(q) for q in _as_list(flags.get("question"))]
    records: list[dict[str, str]] = []
    if images or questions:
        if not questions:
            raise ConfigError('--image needs a question: add --question "..."')
        if not images:
            raise ConfigError("--question needs an image: add --image IMG")
        if len(questions) == 1:
            questions = questions * len(images)
        elif len(images) == 1:
            images = images * len(questions)
        if len(questions) != len(images):
            raise ConfigError(f"{len(images)} images but {len(questions)} questions: give one question for all "
                              "images, one image for all questions, or one --question per --image")
        records = [{"image": i, "question": q} for i, q in zip(images, questions)]
    for path in _as_list(flags.get("questions")):
        records += read_questions_file(Path(str(path)))
    return records


def read_questions_file(path: Path) -> list[dict[str, str]]:
    """``{"image", "question"}`` records of a JSON-lines file, image paths
    resolved against the file's folder."""
    records = []
    for number, row in read_jsonl(path, '{"image": "img.png", "question": "..."}'):
        if not isinstance(row.get("image"), str) or not isinstance(row.get("question"), str):
            raise DataError(f'{path}:{number}: expected {{"image": "img.png", "question": "..."}}')
        records.append({"image": str(path.parent / row["image"]), "question": row["question"]})
    if not records:
        raise DataError(f"{path} holds no questions")
    return records


def check_records(inputs: Sequence[Any], decode: bool = True) -> list[dict[str, str]]:
    """Validated records: an existing (with ``decode``: readable) image and
    a non-empty question each."""
    records = []
    for index, item in enumerate(inputs):
        if not isinstance(item, dict) or "image" not in item or "question" not in item:
            raise DataError(f"input {index + 1} is {item!r}; the vqa task answers "
                            '{"image": "img.png", "question": "..."} records (--image IMG --question TEXT)')
        image, question = str(item["image"]), " ".join(str(item["question"]).split())
        if not question:
            raise DataError(f"input {index + 1} ({image}): empty question")
        if not Path(image).is_file():
            raise DataError(f"input {index + 1}: image {image} does not exist; pass the path of an existing image")
        if decode:
            check_image(Path(image))
        records.append({"image": image, "question": question})
    return records


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, (list, tuple)) else [value]


def _text(value: Any) -> str:
    """A question as the flag parser handed it over (it reads numbers as numbers)."""
    if isinstance(value, (dict, list)):
        raise ConfigError(f"--question {value!r} was read as a YAML structure (a ': ' in it?); put such questions in a --questions file")
    return str(value)
