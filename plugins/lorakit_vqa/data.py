"""Reading a VQA data folder: images plus ``questions.jsonl``.

Each line is ``{"image": "rel/path.png", "question": "...", "answer": "..."}``
or, with several human answers as VQA v2 has, ``"answers": ["...", ...]``.
Image paths are relative to the folder and may not leave it, by ``..`` or by
a symlink (nor may ``questions.jsonl``). Every problem raises ``DataError``
naming the file, the line and the fix; an image with transparent pixels is
used (composited on white) with a warning naming it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from lorakit.api import IMAGE_SUFFIXES, DataError, check_image, is_image, read_jsonl, require_folder, resolve_member

QUESTIONS = "questions.jsonl"
_EXAMPLE = '{"image": "a.png", "question": "...", "answer": "..."}'


@dataclass(frozen=True)
class VqaExample:
    """One question about one image, with every reference answer."""

    image: str
    question: str
    answers: tuple[str, ...]

    @property
    def group(self) -> str:
        """The questions about one image stay in one split: held-out images are unseen."""
        return self.image


def read_vqa_folder(folder: Path, check_images: bool = True) -> list[VqaExample]:
    """Validated examples of ``folder`` (its ``questions.jsonl``)."""
    folder = require_folder(Path(folder), f"images and a {QUESTIONS}")
    path = folder / QUESTIONS
    if not path.is_file():
        raise DataError(f"{folder} has no {QUESTIONS}; write one line per question: "
                        '{"image": "a.png", "question": "...", "answer": "..."}')
    resolve_member(folder, QUESTIONS, str(path))  # a symlink out of the folder is refused, as an image's is
    examples = [_example(folder, f"{path}:{n}", row) for n, row in read_jsonl(path, _EXAMPLE)]
    if not examples:
        raise DataError(f"{path} holds no questions")
    if check_images:
        for image in sorted({e.image for e in examples}):
            check_image(Path(image))
    return examples


def _example(folder: Path, where: str, row: dict) -> VqaExample:
    image, question = row.get("image"), row.get("question")
    if not isinstance(image, str) or not image.strip():
        raise DataError(f"{where}: missing image; give its path relative to {folder}")
    if not isinstance(question, str) or not question.strip():
        raise DataError(f"{where}: empty question; write the question or remove the line")
    answers = row.get("answers", [row["answer"]] if "answer" in row else None)
    if isinstance(answers, str):
        answers = [answers]
    if not isinstance(answers, list) or not answers:
        raise DataError(f'{where}: no answer; give "answer": "..." or a non-empty "answers": [...]')
    if not all(isinstance(a, str) and a.strip() for a in answers):
        raise DataError(f"{where}: every answer must be non-empty text, got {answers!r}")
    path = resolve_member(folder, image.strip(), where)
    if not is_image(path):
        raise DataError(f"{where}: {image!r} is not a supported image type; use one of {', '.join(IMAGE_SUFFIXES)}")
    if not path.is_file():
        raise DataError(f"{where}: image {path} does not exist; add it or remove the line")
    return VqaExample(str(path), " ".join(question.split()), tuple(" ".join(a.split()) for a in answers))
