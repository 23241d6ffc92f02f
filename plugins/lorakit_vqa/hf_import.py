"""``lorakit vqa-import DATASET --out FOLDER``: a Hugging Face VQA dataset on
disk (its parquet files as downloaded from the Hub, or ``save_to_disk``'s
folder) as a VQA folder: the images and ``questions.jsonl``.

    lorakit vqa-import vqa-rad/ --out data/vqa-rad --split train

The question column is ``--question-column`` or ``question``; the answer
column ``--answer-column`` or the first of ``ANSWER_COLUMNS``. An answer
cell may be one text, a list of texts (several annotators' answers, scored
by VQA accuracy), or a list of ``{"answer": ...}`` records as VQA v2's
annotations have them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lorakit.api import ImportSummary, choose_column, choose_media_column, import_split, open_split

#: Answer columns tried in turn when --answer-column is not given.
ANSWER_COLUMNS = ("answers", "answer", "multiple_choice_answer", "label")
NO_QUESTION = "rows without a question"
NO_ANSWER = "rows without an answer"


def import_vqa_dataset(source: Path, out: Path, split: str = "train", image_column: str | None = None,
                       question_column: str | None = None, answer_column: str | None = None,
                       limit: int | None = None, overwrite: bool = False, show_progress: bool = True,
                       where: tuple[str, ...] = ()) -> ImportSummary:
    found = open_split(source, split)
    image = choose_media_column(found, image_column)
    question = choose_column(found, question_column, ("question",), "--question-column", "question")
    answer = choose_column(found, answer_column, ANSWER_COLUMNS, "--answer-column", "answer")

    def records(row: dict[str, Any], name: str) -> list[dict[str, Any]] | str:
        text = row[question]
        if not isinstance(text, str) or not text.strip():
            return NO_QUESTION
        answers = _answers(row[answer])
        if not answers:
            return NO_ANSWER
        given = {"answer": answers[0]} if len(answers) == 1 else {"answers": answers}
        return [{"image": name, "question": " ".join(text.split()), **given}]

    return import_split(found, out, image, [question, answer], "questions.jsonl", records, limit=limit,
                        overwrite=overwrite, show_progress=show_progress, where=where)


def _answers(value: Any) -> list[str]:
    """The non-empty answers a cell holds (a number or yes/no stored as such
    is its text: 2 -> "2", True -> "yes")."""
    values = value if isinstance(value, list) else [value]
    answers = []
    for item in values:
        if isinstance(item, dict):
            item = item.get("answer")
        if isinstance(item, bool):
            item = "yes" if item else "no"
        elif isinstance(item, (int, float)) and not isinstance(item, bool):
            item = str(item)
        if isinstance(item, str) and item.strip():
            answers.append(" ".join(item.split()))
    return answers
