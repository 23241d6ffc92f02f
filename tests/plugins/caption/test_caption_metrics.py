"""BLEU-4 and CIDEr against hand-checked cases."""

import pytest

from lorakit_caption.metrics import caption_scores, normalize_caption

REFS = [["a red circle on the left"], ["a blue square at the top"], ["a green star in the center"]]


def test_identical_captions_score_high():
    scores = caption_scores([r[0] for r in REFS], REFS)
    assert scores["bleu4"] == pytest.approx(1.0, abs=1e-6)
    assert scores["cider"] == pytest.approx(10.0, abs=1e-3)  # every n-gram matched, distinct captions


def test_disjoint_captions_score_zero():
    assert caption_scores(["x y z w", "q r s t", "u v"], REFS) == {"cider": 0.0, "bleu4": 0.0}


def test_empty_prediction_scores_zero():
    assert caption_scores(["", "", ""], REFS) == {"cider": 0.0, "bleu4": 0.0}


def test_case_and_punctuation_do_not_matter():
    predictions = ["A red circle, on the LEFT!", "a blue square at the top", "a green star in the center"]
    assert caption_scores(predictions, REFS) == caption_scores([r[0] for r in REFS], REFS)
    assert normalize_caption("  A  red, circle. ") == "a red circle"


def test_any_reference_may_match():
    refs = [REFS[0] + ["a crimson ball"], ["a crimson ball", "a blue square at the top"], REFS[2]]
    one = caption_scores(["a red circle on the left", "a blue square at the top", "a green star in the center"], refs)
    assert one["bleu4"] == pytest.approx(1.0, abs=1e-6)
    assert one["cider"] > 5


def test_partial_match_is_in_between():
    scores = caption_scores(["a red circle at the top", REFS[1][0], REFS[2][0]], REFS)
    assert 0 < scores["bleu4"] < 1 and 0 < scores["cider"] < 10


def test_mismatched_lengths_and_empty_set():
    with pytest.raises(ValueError):
        caption_scores(["a"], REFS)
    assert caption_scores([], []) == {"cider": 0.0, "bleu4": 0.0}
