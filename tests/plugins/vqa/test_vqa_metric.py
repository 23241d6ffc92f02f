"""VQA accuracy against hand-computed cases."""

import pytest

from lorakit_vqa.metrics import majority_answer, normalize_answer, vqa_accuracy, vqa_scores


@pytest.mark.parametrize("raw, normal", [
    ("Two", "2"),
    ("the dog.", "dog"),
    ("A red, round ball!", "red round ball"),
    ("dont", "don't"),
    ("1,000", "1000"),
    ("3.5", "3.5"),
    ("  Yes\n", "yes"),
    ("an apple", "apple"),
    ("none", "0"),
])
def test_normalisation(raw, normal):
    assert normalize_answer(raw) == normal


def test_ten_annotators():
    answers = ["2"] * 2 + ["two"] + ["3"] * 7   # "2" given by three annotators once normalised
    assert vqa_accuracy("2", answers) == 1.0
    assert vqa_accuracy("3", answers) == 1.0
    assert vqa_accuracy("4", answers) == 0.0
    answers = ["red"] * 2 + ["blue"] * 8
    assert vqa_accuracy("Red", answers) == pytest.approx(2 / 3)
    assert vqa_accuracy("red.", ["red"] + ["blue"] * 9) == pytest.approx(1 / 3)


def test_one_or_two_reference_answers():
    assert vqa_accuracy("The cat", ["cat"]) == 1.0
    assert vqa_accuracy("dog", ["cat"]) == 0.0
    assert vqa_accuracy("cat", ["cat", "kitten"]) == 0.5


def test_scores_average_and_exact_match():
    scores = vqa_scores(["yes", "2", "blue"], [["yes"] * 3, ["two", "3", "3"], ["red"]])
    assert scores["vqa_accuracy"] == pytest.approx((1 + 1 / 3 + 0) / 3)
    assert scores["exact_match"] == pytest.approx(1 / 3)
    assert majority_answer(["two", "3", "3"]) == "3"


def test_empty_answer_list_is_refused():
    with pytest.raises(ValueError):
        vqa_accuracy("x", [])
