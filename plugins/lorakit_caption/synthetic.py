"""Synthetic captioned images: small PIL drawings, deterministic by seed.

Two worlds share one vocabulary:

* ``scene`` (the *base* domain): one flat shape (circle, square, triangle,
  diamond) on a pale background, captioned ``"a small red circle on the left"``.
  The demo base is pretrained on it; ``samples/caption/retain`` holds it too.
* ``catalog`` (the *new* domain a LoRA adapter learns): one product-like item
  (star, heart, cross, ring) on a coloured studio backdrop, captioned in a
  terse catalogue style, ``"red star on grey"``.
* ``sign`` (also base domain): a word printed on a pale card, captioned
  ``"the word star"``. It is how the base learns to *write* the catalog's
  words without ever seeing a catalog item: a real base model knows its
  language, only the new concepts and style are for the adapter to learn.

The demo base has never seen a catalog image nor written a catalog caption,
so its captions of ``samples/caption/catalog`` score low, and an adapter has a
real style and real objects to learn. (Which words the base's pretraining
covers is decided in ``make_demo``.)

Rewrite the sample datasets (seeded, so the files are identical every time)::

    python -m lorakit_caption.synthetic --out samples/caption
"""

from __future__ import annotations

import argparse
import json
import math
import random
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

SIZE = 64

COLORS = {
    "red": (220, 40, 40),
    "green": (40, 170, 60),
    "blue": (40, 80, 220),
    "yellow": (235, 200, 30),
    "purple": (140, 60, 180),
    "orange": (245, 130, 20),
}
SCENE_SHAPES = ("circle", "square", "triangle", "diamond")
CATALOG_SHAPES = ("star", "heart", "cross", "ring")
POSITIONS = ("left", "right", "top", "bottom", "center")
SIZES = ("small", "large")
# Catalog backdrops: saturated enough to be unlike the scene's pale backgrounds.
BACKDROPS = {"grey": (120, 120, 120), "black": (25, 25, 25), "teal": (30, 120, 120)}
# The words a catalog caption needs that a scene caption never uses.
SIGN_WORDS = CATALOG_SHAPES + tuple(BACKDROPS)

_POSITION_PHRASE = {
    "left": "on the left",
    "right": "on the right",
    "top": "at the top",
    "bottom": "at the bottom",
    "center": "in the center",
}
_ANCHORS = {"left": (0.27, 0.5), "right": (0.73, 0.5), "top": (0.5, 0.27), "bottom": (0.5, 0.73), "center": (0.5, 0.5)}


@dataclass(frozen=True)
class Sample:
    """One rendered image with its caption."""

    image: Image.Image
    caption: str


def scene_caption(color: str, shape: str, position: str, size: str) -> str:
    """The base-domain caption of a scene."""
    return f"a {size} {color} {shape} {_POSITION_PHRASE[position]}"


def catalog_caption(color: str, shape: str, backdrop: str) -> str:
    """The catalogue-style caption of a catalog item."""
    return f"{color} {shape} on {backdrop}"


def render_scene(rng: random.Random) -> Sample:
    """A base-domain image: one shape on a pale, slightly tinted background."""
    color, shape = rng.choice(list(COLORS)), rng.choice(SCENE_SHAPES)
    position, size = rng.choice(POSITIONS), rng.choice(SIZES)
    background = tuple(rng.randint(225, 255) for _ in range(3))
    image = Image.new("RGB", (SIZE, SIZE), background)
    radius = (7 if size == "small" else 12) + rng.uniform(-1.0, 1.0)
    draw_shape(ImageDraw.Draw(image), shape, shape_center(rng, position), radius, COLORS[color], background)
    return Sample(image, scene_caption(color, shape, position, size))


def render_catalog(rng: random.Random) -> Sample:
    """A new-domain image: one large item, centred, on a coloured backdrop."""
    color, shape, backdrop = rng.choice(list(COLORS)), rng.choice(CATALOG_SHAPES), rng.choice(list(BACKDROPS))
    fill = BACKDROPS[backdrop]
    image = Image.new("RGB", (SIZE, SIZE), fill)
    center = (SIZE / 2 + rng.uniform(-4, 4), SIZE / 2 + rng.uniform(-4, 4))
    draw_shape(ImageDraw.Draw(image), shape, center, 16 + rng.uniform(-2, 2), COLORS[color], fill)
    return Sample(image, catalog_caption(color, shape, backdrop))


def render_sign(rng: random.Random) -> Sample:
    """A base-domain image: one catalog word printed in dark ink on a pale card."""
    word = rng.choice(SIGN_WORDS)
    image = Image.new("RGB", (SIZE, SIZE), tuple(rng.randint(225, 255) for _ in range(3)))
    font = ImageFont.load_default(size=rng.choice((12, 14, 16)))
    left, top, right, bottom = font.getbbox(word)
    x = rng.uniform(2, max(2.0, SIZE - 2 - right))
    y = rng.uniform(2 - top, max(2.0 - top, SIZE - 2 - bottom))
    ImageDraw.Draw(image).text((x, y), word, fill=tuple(rng.randint(0, 60) for _ in range(3)), font=font)
    return Sample(image, f"the word {word}")


RENDERERS = {"scene": render_scene, "catalog": render_catalog, "sign": render_sign}


def render(world: str, count: int, seed: int) -> list[Sample]:
    """``count`` samples of ``world`` (``scene`` or ``catalog``), deterministic by ``seed``."""
    rng = random.Random(f"{world}-{seed}")
    return [RENDERERS[world](rng) for _ in range(count)]


def caption_words() -> list[str]:
    """Every word any caption of any world uses, sorted (the demo vocabulary)."""
    captions = [scene_caption(c, s, p, z) for c in COLORS for s in SCENE_SHAPES for p in POSITIONS for z in SIZES]
    captions += [catalog_caption(c, s, b) for c in COLORS for s in CATALOG_SHAPES for b in BACKDROPS]
    captions += [f"the word {word}" for word in SIGN_WORDS]
    return sorted({word for caption in captions for word in caption.split()})


def shape_center(rng: random.Random, position: str) -> tuple[float, float]:
    """Where a shape at ``position`` is drawn, jittered a little."""
    ax, ay = _ANCHORS[position]
    return ax * SIZE + rng.uniform(-3, 3), ay * SIZE + rng.uniform(-3, 3)


def draw_shape(draw: ImageDraw.ImageDraw, shape: str, c: tuple[float, float], r: float, color, background) -> None:
    """Draw ``shape`` of radius ``r`` centred at ``c`` (VQA's images reuse it)."""
    x, y = c
    if shape == "circle":
        draw.ellipse([x - r, y - r, x + r, y + r], fill=color)
    elif shape == "square":
        s = r * 0.85
        draw.rectangle([x - s, y - s, x + s, y + s], fill=color)
    elif shape == "triangle":
        draw.polygon([(x, y - r), (x - r, y + r * 0.8), (x + r, y + r * 0.8)], fill=color)
    elif shape == "diamond":
        draw.polygon([(x, y - r), (x + r * 0.8, y), (x, y + r), (x - r * 0.8, y)], fill=color)
    elif shape == "star":
        points = [_polar(x, y, r if i % 2 == 0 else r * 0.42, i * math.pi / 5 - math.pi / 2) for i in range(10)]
        draw.polygon(points, fill=color)
    elif shape == "heart":
        h = r * 0.5
        draw.ellipse([x - r, y - r * 0.8, x, y + r * 0.2 - 0.1 * r], fill=color)
        draw.ellipse([x, y - r * 0.8, x + r, y + r * 0.2 - 0.1 * r], fill=color)
        draw.polygon([(x - r * 0.97, y - h * 0.3), (x + r * 0.97, y - h * 0.3), (x, y + r)], fill=color)
    elif shape == "cross":
        t = r * 0.33
        draw.rectangle([x - t, y - r, x + t, y + r], fill=color)
        draw.rectangle([x - r, y - t, x + r, y + t], fill=color)
    elif shape == "ring":
        draw.ellipse([x - r, y - r, x + r, y + r], fill=color)
        draw.ellipse([x - r * 0.55, y - r * 0.55, x + r * 0.55, y + r * 0.55], fill=background)
    else:
        raise ValueError(f"unknown shape {shape!r}")


def _polar(x: float, y: float, r: float, angle: float) -> tuple[float, float]:
    return x + r * math.cos(angle), y + r * math.sin(angle)


def write_dataset(samples: list[Sample], folder: Path, prefix: str) -> None:
    """Write PNGs and a Hugging Face imagefolder ``metadata.jsonl`` into ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    lines = []
    for i, sample in enumerate(samples):
        name = f"{prefix}_{i:04d}.png"
        sample.image.save(folder / name, optimize=True)
        lines.append(json.dumps({"file_name": name, "text": sample.caption}))
    (folder / "metadata.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")


def write_samples(out: Path, domain_count: int = 300, retain_count: int = 150) -> None:
    """Write ``out/catalog`` (the new domain) and ``out/retain`` (base domain).

    Seeds differ from the ones ``make_demo`` pretrains on, so the retain set
    is held out from the base's own training data.
    """
    write_dataset(render("catalog", domain_count, seed=1), out / "catalog", "catalog")
    write_dataset(render("scene", retain_count, seed=2), out / "retain", "scene")


def main(argv: list[str] | None = None) -> None:
    """Command line: rewrite the sample datasets."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("samples/caption"), help="folder to write catalog/ and retain/ into")
    parser.add_argument("--domain-count", type=int, default=300)
    parser.add_argument("--retain-count", type=int, default=150)
    args = parser.parse_args(argv)
    write_samples(args.out, args.domain_count, args.retain_count)
    print(f"wrote {args.out / 'catalog'} and {args.out / 'retain'}")


if __name__ == "__main__":
    main()
