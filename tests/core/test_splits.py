"""Held-out splits: deterministic, whole groups (e.g. the windows of one
track) never split across train and held-out, classes kept in proportion."""

from dataclasses import dataclass

from lorakit import runs
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


@dataclass(frozen=True)
class Review:
    text: str
    label: str


def test_labelled_examples_are_split_within_each_class():
    """A stratified split: every part keeps the classes in proportion, even a rare one."""
    from collections import Counter

    examples = [Review(f"{label}{i}", label) for label, n in (("neg", 40), ("pos", 20), ("meh", 10)) for i in range(n)]
    for seed in range(5):
        test, val, train = split_examples(examples, [0.2, 0.1], seed)
        assert Counter(e.label for e in test) == {"neg": 8, "pos": 4, "meh": 2}
        assert Counter(e.label for e in val) == {"neg": 4, "pos": 2, "meh": 1}
        assert Counter(e.label for e in train) == {"neg": 28, "pos": 14, "meh": 7}
        assert sorted(test + val + train, key=lambda e: e.text) == sorted(examples, key=lambda e: e.text)
    assert split_examples(examples, [0.2, 0.1], 3) == split_examples(examples, [0.2, 0.1], 3)


@dataclass(frozen=True)
class Question:
    image: str
    label: str

    @property
    def group(self):
        return self.image


def test_groups_stay_whole_within_their_class():
    questions = [Question(f"{label}-img{i}", label) for label, n in (("yes", 10), ("no", 10)) for i in range(n)
                 for _ in range(3)]
    test, val, train = split_examples(questions, [0.2, 0.1], 0)
    images = [{q.image for q in part} for part in (test, val, train)]
    assert not (images[0] & images[2]) and not (images[0] & images[1]) and not (images[1] & images[2])
    assert sum(q.label == "yes" for q in test) == sum(q.label == "no" for q in test) == 6


def test_split_seed_holds_the_held_out_set_across_training_seeds(toy_host, toy_data):
    """The split follows train.seed unless data.split_seed fixes it: a seed
    sweep can then compare its runs on one held-out set."""
    from lorakit.apply import load_base
    from lorakit.run_data import load_splits

    def held_out(*flags):
        config = runs.load_config("toy", ["--data", str(toy_data), *flags])
        task = runs.make_task(config)
        return load_splits(task, load_base(task, config.base), config).test

    assert held_out("--train.seed", "1") != held_out("--train.seed", "2")
    assert held_out("--train.seed", "1", "--split_seed", "4") == held_out("--train.seed", "2", "--split_seed", "4")
    assert held_out("--split_seed", "1") == held_out("--train.seed", "1")
