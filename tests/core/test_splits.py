"""Held-out splits: deterministic, and whole groups (e.g. the windows of one
track) never split across train and held-out."""

from dataclasses import dataclass

from lorakit.data.splits import split_examples


@dataclass(frozen=True)
class Window:
    name: str
    group: str


def test_splits_are_deterministic_and_cover_every_example_once():
    examples = list(range(20))
    test, val, train = split_examples(examples, [0.15, 0.1], seed=3)
    assert (len(test), len(val), len(train)) == (3, 2, 15)
    assert sorted(test + val + train) == examples
    assert split_examples(examples, [0.15, 0.1], seed=3) == [test, val, train]
    assert split_examples(examples, [0.15, 0.1], seed=4) != [test, val, train]


def test_a_small_fraction_still_gets_one_example():
    test, train = split_examples(list(range(4)), [0.1], seed=0)
    assert len(test) == 1 and len(train) == 3


def test_groups_stay_whole_and_fractions_count_groups():
    examples = [Window(f"{track}#{i}", track) for track in "abcdefghij" for i in range(3)]
    for seed in range(5):
        test, val, train = split_examples(examples, [0.2, 0.1], seed)
        groups = [{w.group for w in part} for part in (test, val, train)]
        assert (len(groups[0]), len(groups[1]), len(groups[2])) == (2, 1, 7)
        assert not (groups[0] & groups[2]) and not (groups[1] & groups[2]) and not (groups[0] & groups[1])
        assert len(test) == 6 and len(test) + len(val) + len(train) == 30
