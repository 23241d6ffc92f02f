"""The vqa task's metrics: VQA accuracy as the VQA benchmark defines it, plus exact match.

Answers are normalised the benchmark's way before comparing: lower case,
punctuation removed (a period between digits and a comma inside a number are
kept), number words turned into digits, articles dropped, and common
contractions written with their apostrophe.

An answer scores ``min(#annotators who gave it / 3, 1)``: three agreeing
annotators make it fully right. With fewer than three reference answers the
divisor is their count, so a dataset with one answer per question scores a
match as 1.
"""

from __future__ import annotations

import re
from collections import Counter
from typing import Sequence

NUMBERS = {"none": "0", "zero": "0", "one": "1", "two": "2", "three": "3", "four": "4", "five": "5",
           "six": "6", "seven": "7", "eight": "8", "nine": "9", "ten": "10"}
ARTICLES = {"a", "an", "the"}
CONTRACTIONS = {
    "aint": "ain't", "arent": "aren't", "cant": "can't", "couldnt": "couldn't", "didnt": "didn't",
    "doesnt": "doesn't", "dont": "don't", "hadnt": "hadn't", "hasnt": "hasn't", "havent": "haven't",
    "hes": "he's", "im": "i'm", "isnt": "isn't", "itll": "it'll", "ive": "i've", "shouldnt": "shouldn't",
    "thats": "that's", "theres": "there's", "theyre": "they're", "wasnt": "wasn't", "werent": "weren't",
    "whats": "what's", "wont": "won't", "wouldnt": "wouldn't", "youre": "you're",
}
_PUNCTUATION = re.compile(r"[;/\[\]\"{}()=+\\_\-><@`,?!*#%^&$~|:']")
_PERIOD = re.compile(r"(?<!\d)\.(?!\d)")
_NUMBER_COMMA = re.compile(r"(?<=\d),(?=\d)")


def normalize_answer(answer: str) -> str:
    """The benchmark's answer normalisation (see the module docstring)."""
    text = answer.lower().replace("\n", " ").replace("\t", " ").strip()
    text = _NUMBER_COMMA.sub("", text)
    text = _PERIOD.sub("", text)
    text = _PUNCTUATION.sub(lambda m: "" if m.group(0) == "'" else " ", text)
    words = []
    for word in text.split():
        word = NUMBERS.get(word, word)
        if word in ARTICLES:
            continue
        words.append(CONTRACTIONS.get(word, word))
    return " ".join(words)


def vqa_accuracy(prediction: str, answers: Sequence[str]) -> float:
    """Accuracy of one prediction against the annotators' answers."""
    if not answers:
        raise ValueError("a question needs at least one reference answer")
    predicted = normalize_answer(prediction)
    matches = sum(normalize_answer(a) == predicted for a in answers)
    return min(matches / min(3, len(answers)), 1.0)


def majority_answer(answers: Sequence[str]) -> str:
    """The most common normalised answer (ties: the first given)."""
    # most_common keeps first-seen order among equal counts.
    return Counter(normalize_answer(a) for a in answers).most_common(1)[0][0]


def vqa_scores(predictions: Sequence[str], answers: Sequence[Sequence[str]]) -> dict[str, float]:
    """Mean VQA accuracy and exact match (prediction == majority answer)."""
    if len(predictions) != len(answers):
        raise ValueError(f"{len(predictions)} predictions for {len(answers)} answer lists")
    if not predictions:
        return {"vqa_accuracy": 0.0, "exact_match": 0.0}
    accuracy = sum(vqa_accuracy(p, a) for p, a in zip(predictions, answers)) / len(predictions)
    exact = sum(normalize_answer(p) == majority_answer(a) for p, a in zip(predictions, answers)) / len(predictions)
    return {"vqa_accuracy": accuracy, "exact_match": exact}
