"""Synthetic questions about synthetic images, deterministic by seed.

The images are drawn with the caption plugin's renderer
(``lorakit_caption.synthetic``), plus damage on the items; every image gets
one question and its reference answers:

* ``scene`` (the *base* domain): one flat shape on a pale or dark background. Asked
  what shape, what colour, where, whether it is small/large or of a colour.
  Its shapes include the items' (star, heart, cross, ring), as a real base
  knows what a star is; it has only never seen one as an inspected item.
* ``inspection`` (the *new* domain a LoRA adapter learns): a catalog item on a
  studio backdrop, half of them damaged all over (cracked, rusted, faded).
  Asked "is it damaged?", "what is the damage?", "what item is this?", "what
  color is the item?".

The demo base has never seen an inspection image, and the damage words
(crack, rust, faded) are answers it has never given: its tokenizer
spells them in single characters it was never trained to emit, so learning
them needs the answer head trained too (see ``VqaOptions.train_head``).

Some questions carry three annotators' answers, one of them a synonym (as in
VQA v2), so the VQA accuracy of the right word is 2/3 on those.

Rewrite the sample datasets (seeded, so the files are identical every time)::

    python -m lorakit_vqa.synthetic --out samples/vqa
"""

from __future__ import annotations

import argparse
import json
import math
import random
from dataclasses import dataclass
from pathlib import Path

from lorakit_caption import synthetic as worlds
from PIL import Image, ImageDraw

SIZE = worlds.SIZE
# The base knows every shape, the item shapes included, as a real base knows
# what a star is; it has only never seen them as inspected catalog items.
SCENE_SHAPES = worlds.SCENE_SHAPES + worlds.CATALOG_SHAPES
DAMAGES = ("crack", "rust", "faded")
# A third annotator sometimes says it another way (VQA v2 has such answers).
SYNONYMS = {"crack": "cracked", "rust": "corrosion", "faded": "bleached", "cross": "plus", "ring": "donut"}
_SYNONYM_RATE = 0.25
_CRACK_INK, _PIT_INK, _RUST = (25, 25, 25), (70, 35, 15), (150, 80, 35)
_FADE = 0.7


@dataclass(frozen=True)
class Question:
    """One rendered image, a question about it and the reference answers."""

    image: Image.Image
    question: str
    answers: tuple[str, ...]


# -- base domain ------------------------------------------------------------------


def scene_question(rng: random.Random) -> Question:
    """A scene image and one of the base domain's questions about it."""
    color, shape = rng.choice(list(worlds.COLORS)), rng.choice(SCENE_SHAPES)
    position, size = rng.choice(worlds.POSITIONS), rng.choice(worlds.SIZES)
    background = _scene_background(rng)
    image = Image.new("RGB", (SIZE, SIZE), background)
    radius = (7 if size == "small" else 12) + rng.uniform(-1.0, 1.0)
    worlds.draw_shape(ImageDraw.Draw(image), shape, worlds.shape_center(rng, position), radius,
                       worlds.COLORS[color], background)
    asked_size, asked_color = rng.choice(worlds.SIZES), rng.choice([color, rng.choice(list(worlds.COLORS))])
    # Shape is asked most: it is what a tiny vision tower learns last.
    question, answer = rng.choice([
        ("what shape is this?", shape),
        ("what shape is this?", shape),
        ("what shape is this?", shape),
        ("what color is the shape?", color),
        ("where is the shape?", position),
        (f"is the shape {asked_size}?", _yes_no(asked_size == size)),
        (f"is the shape {asked_color}?", _yes_no(asked_color == color)),
    ])
    return Question(image, question, (answer,))


# -- new domain -------------------------------------------------------------------


def inspection_question(rng: random.Random) -> Question:
    """A catalog item, damaged half of the time, and a question about it."""
    color, shape = rng.choice(list(worlds.COLORS)), rng.choice(worlds.CATALOG_SHAPES)
    backdrop = worlds.BACKDROPS[rng.choice(list(worlds.BACKDROPS))]
    damage = rng.choice(DAMAGES) if rng.random() < 0.5 else None
    image = _render_item(rng, shape, worlds.COLORS[color], backdrop, damage)
    # "what is the damage?" is only asked of damaged items, and most often:
    # its answers are the words the base has never said. A damaged item's
    # colour is the damage's, so only intact items are asked their colour.
    weights = [2, 4, 2, 0] if damage else [3, 0, 3, 1]
    kind = rng.choices(["damaged", "damage", "item", "color"], weights=weights)[0]
    if kind == "damaged":
        return Question(image, "is it damaged?", (_yes_no(damage is not None),))
    if kind == "damage":
        return Question(image, "what is the damage?", _annotators(rng, damage))
    if kind == "item":
        return Question(image, "what item is this?", _annotators(rng, shape))
    return Question(image, "what color is the item?", (color,))


def _render_item(rng: random.Random, shape: str, color, backdrop, damage: str | None) -> Image.Image:
    """One large centred item (as the caption plugin's catalog draws it), damaged all over.

    Damage covers the item's surface (rust, fading, a web of cracks) rather
    than a spot: the demo base's tiny vision tower (8x8 patches of 8 pixels)
    reads colours and coarse shapes, and a LoRA adapter cannot teach it to
    see a 10-pixel hole from a few hundred examples.
    """
    image = Image.new("RGB", (SIZE, SIZE), backdrop)
    mask = Image.new("L", (SIZE, SIZE), 0)
    center = (SIZE / 2 + rng.uniform(-4, 4), SIZE / 2 + rng.uniform(-4, 4))
    radius = 16 + rng.uniform(-2, 2)
    worlds.draw_shape(ImageDraw.Draw(image), shape, center, radius, _surface(rng, color, damage), backdrop)
    worlds.draw_shape(ImageDraw.Draw(mask), shape, center, radius, 255, 0)
    if damage in ("crack", "rust"):
        # Marks drawn on a copy and pasted through the item's mask stay on the item.
        layer = image.copy()
        _marks(rng, ImageDraw.Draw(layer), damage, center)
        image.paste(layer, (0, 0), mask)
    return image


def _surface(rng: random.Random, color, damage: str | None) -> tuple[int, int, int]:
    """The item's colour: its own, rust brown, or faded toward white."""
    if damage == "rust":
        return tuple(c + rng.randint(-12, 12) for c in _RUST)
    if damage == "faded":
        return tuple(round(c + (255 - c) * _FADE) for c in color)
    return color


def _marks(rng: random.Random, draw: ImageDraw.ImageDraw, damage: str, center) -> None:
    """Three jagged cracks across the item, or dark rust pits all over it."""
    x, y = center
    if damage == "crack":
        for _ in range(3):
            angle = rng.uniform(0, math.pi)
            dx, dy = math.cos(angle), math.sin(angle)
            points = [(x + 5 * t * dx - j * dy, y + 5 * t * dy + j * dx)
                      for t, j in ((t, rng.uniform(-2.5, 2.5)) for t in range(-4, 5))]
            draw.line(points, fill=_CRACK_INK, width=2)
        return
    for _ in range(14):
        px, py, r = x + rng.uniform(-16, 16), y + rng.uniform(-16, 16), rng.uniform(1.0, 2.5)
        draw.ellipse([px - r, py - r, px + r, py + r], fill=_PIT_INK)


def _annotators(rng: random.Random, answer: str) -> tuple[str, ...]:
    """One answer, or three annotators' answers of which one may be a synonym."""
    if answer in SYNONYMS and rng.random() < _SYNONYM_RATE:
        answers = [answer, answer, SYNONYMS[answer]]
        rng.shuffle(answers)
        return tuple(answers)
    return (answer,)


def _scene_background(rng: random.Random) -> tuple[int, int, int]:
    """Pale, as the caption scenes have, or dark: a base that has seen dark
    backgrounds sees colours and shapes on the items' backdrops too."""
    if rng.random() < 0.5:
        return tuple(rng.randint(225, 255) for _ in range(3))
    return tuple(rng.randint(0, 130) for _ in range(3))


def _yes_no(flag: bool) -> str:
    return "yes" if flag else "no"


# -- datasets ---------------------------------------------------------------------

RENDERERS = {"scene": scene_question, "inspection": inspection_question}


def render(world: str, count: int, seed: int) -> list[Question]:
    """``count`` questions about fresh images of ``world``, deterministic by ``seed``."""
    rng = random.Random(f"vqa-{world}-{seed}")
    return [RENDERERS[world](rng) for _ in range(count)]


def write_dataset(questions: list[Question], folder: Path, prefix: str) -> None:
    """Write PNGs and a ``questions.jsonl`` (``answer`` or ``answers``) into ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    lines = []
    for i, item in enumerate(questions):
        name = f"{prefix}_{i:04d}.png"
        item.image.save(folder / name, optimize=True)
        row = {"image": name, "question": item.question}
        if len(item.answers) == 1:
            row["answer"] = item.answers[0]
        else:
            row["answers"] = list(item.answers)
        lines.append(json.dumps(row))
    (folder / "questions.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")


def write_samples(out: Path, domain_count: int = 260, retain_count: int = 320) -> None:
    """Write ``out/inspection`` (the new domain) and ``out/retain`` (base domain).

    Seeds differ from the ones ``make_demo`` pretrains on, so the retain set
    is held out from the base's own training data.
    """
    write_dataset(render("inspection", domain_count, seed=1), out / "inspection", "item")
    write_dataset(render("scene", retain_count, seed=2), out / "retain", "scene")


def main(argv: list[str] | None = None) -> None:
    """Command line: rewrite the sample datasets."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("samples/vqa"), help="folder to write inspection/ and retain/ into")
    parser.add_argument("--domain-count", type=int, default=260)
    parser.add_argument("--retain-count", type=int, default=320)
    args = parser.parse_args(argv)
    write_samples(args.out, args.domain_count, args.retain_count)
    print(f"wrote {args.out / 'inspection'} and {args.out / 'retain'}")


if __name__ == "__main__":
    main()
