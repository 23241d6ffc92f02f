"""Synthetic reviews in two domains, deterministic by seed.

* ``products`` (the demo base's domain): "the kettle is sturdy and reliable".
* ``movies`` (the new domain an adapter learns): "the plot was gripping".

Sentiment words of one domain never appear in the other, so the base, which
learnt products, is near chance on movies until an adapter teaches it.

    python -m lorakit_textclass.synthetic      # rewrites lorakit_textclass/samples
"""

from __future__ import annotations

import argparse
import json
import random
from pathlib import Path

DOMAINS = {
    "products": {
        "things": ["kettle", "blender", "charger", "backpack", "lamp", "headset", "toaster", "drill"],
        "positive": ["sturdy", "reliable", "well made", "great value", "solid", "durable", "handy", "quiet"],
        "negative": ["flimsy", "defective", "cheap plastic", "overpriced", "noisy", "fragile", "useless", "leaky"],
        "templates": ["the {thing} is {word}", "this {thing} feels {word}", "my new {thing} is {word} and {word2}",
                      "a {word} {thing} overall", "honestly the {thing} seems {word}"],
    },
    "movies": {
        "things": ["film", "plot", "script", "ending", "cast", "sequel", "soundtrack", "story"],
        "positive": ["gripping", "brilliant", "moving", "stunning", "hilarious", "masterful", "charming", "tense"],
        "negative": ["boring", "dull", "predictable", "wooden", "forgettable", "clumsy", "tedious", "bland"],
        "templates": ["the {thing} was {word}", "this {thing} felt {word}", "a {word} and {word2} {thing}",
                      "honestly the {thing} seemed {word}", "what a {word} {thing}"],
    },
}
LABELS = ("negative", "positive")
#: The sample folders shipped in the package (the textclass-demo recipe's data).
SAMPLES = Path(__file__).parent / "samples"


def review(domain: str, rng: random.Random) -> dict[str, str]:
    spec = DOMAINS[domain]
    label = rng.choice(LABELS)
    words = spec[label]
    first, second = rng.sample(words, 2)
    text = rng.choice(spec["templates"]).format(thing=rng.choice(spec["things"]), word=first, word2=second)
    return {"text": text, "label": label}


def reviews(domain: str, count: int, seed: int) -> list[dict[str, str]]:
    rng = random.Random(f"{domain}-{seed}")
    return [review(domain, rng) for _ in range(count)]


def vocabulary() -> list[str]:
    """Every word any review can contain."""
    words = set()
    for spec in DOMAINS.values():
        for key in ("things", "positive", "negative"):
            for phrase in spec[key]:
                words.update(phrase.split())
        for template in spec["templates"]:
            words.update(w for w in template.split() if not w.startswith("{"))
    return sorted(words)


def write_folder(folder: Path, rows: list[dict[str, str]]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / "data.jsonl", "w", encoding="utf-8") as handle:
        for row in rows:
            handle.write(json.dumps(row) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description="Write the sample review folders.")
    parser.add_argument("--out", type=Path, default=SAMPLES)
    args = parser.parse_args()
    write_folder(args.out / "movies", reviews("movies", 240, seed=1))
    write_folder(args.out / "products", reviews("products", 120, seed=2))
    print(f"wrote {args.out / 'movies'} and {args.out / 'products'}")


if __name__ == "__main__":
    main()
