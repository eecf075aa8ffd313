"""Synthetic image domains drawn with Pillow, graded by difficulty (levels 1-4).

Each ``make_<domain>(rng, level)`` returns a ``VisualProblem``: the image, a
question about it, the ground-truth answer and the step-by-step reasoning that
reaches it (the long-CoT trace, as for the text domains). Images come in many
sizes and aspect ratios, a share of them very wide or very tall (20:1, 1:20),
because GLM-4.1V reads images at their native resolution and rlcs must carry
any shape through the processor, SFT and rollout.

Domains and their verifiers (``rewards/``):
- ``shapes``: count the shapes of one colour among others -> ``math``;
- ``ocr``: read the characters drawn in the image -> ``ocr`` (edit distance);
- ``grounding``: the box of the one shape of a colour, in GLM-4.1V's
  coordinates normalised to 0-1000 -> ``grounding`` (IoU);
- ``chart``: which bar of a bar chart is tallest or shortest -> ``choice``.
"""

from __future__ import annotations

import hashlib
import io
import random
from collections.abc import Callable
from dataclasses import dataclass

from PIL import Image, ImageDraw, ImageFont

COLOURS = {"red": (220, 40, 40), "blue": (40, 80, 220), "green": (30, 160, 60), "yellow": (230, 200, 30)}
BACKGROUND = (255, 255, 255)
# (width, height) in pixels; the last two are the extreme aspect ratios every domain must survive
SHAPES_OF_IMAGE = [(112, 112), (168, 112), (112, 168), (224, 112), (112, 224), (280, 14 * 4), (56, 280)]
EXTREME_SHARE = 0.15
VISUAL_DOMAINS = ("shapes", "ocr", "grounding", "chart")


@dataclass(frozen=True)
class VisualProblem:
    domain: str
    level: int
    prompt: str
    answer: str
    steps: tuple[str, ...]
    image: Image.Image
    caption: str  # what the image shows, question aside: its image-caption pretraining document

    @property
    def id(self) -> str:
        """Content-addressed like the text problems, with the image's pixels in the hash."""
        digest = hashlib.sha1(f"{self.domain}\x00{self.prompt}\x00".encode() + self.image.tobytes())
        return f"{self.domain}-{digest.hexdigest()[:12]}"

    def reasoning(self) -> str:
        return "\n".join(self.steps)

    def png(self) -> bytes:
        buffer = io.BytesIO()
        self.image.save(buffer, format="PNG")
        return buffer.getvalue()


def image_size(rng: random.Random) -> tuple[int, int]:
    """Most images are near square; ``EXTREME_SHARE`` of them are 20:1 or 1:20 (as wide or tall as allowed)."""
    if rng.random() < EXTREME_SHARE:
        return (560, 28) if rng.random() < 0.5 else (28, 560)
    return rng.choice(SHAPES_OF_IMAGE[:5])


def cell_grid(width: int, height: int, count: int) -> list[tuple[int, int, int]]:
    """Every square cell (x, y, side) a drawing of ``count`` shapes lays them into, in reading order."""
    side = max(8, min(width, height) // 2) if count <= 2 else max(8, min(width, height, max(width, height) // count))
    columns, rows = max(1, width // side), max(1, height // side)
    return [(c * side, r * side, side) for r in range(rows) for c in range(columns)]


def _slots(width: int, height: int, count: int, rng: random.Random) -> list[tuple[int, int, int]]:
    """``count`` non-overlapping square cells (x, y, side) laid along the image's longer side first."""
    cells = cell_grid(width, height, count)
    if len(cells) < count:
        raise ValueError(f"a {width}x{height} image has room for {len(cells)} shapes, not {count}")
    return rng.sample(cells, count)


def shape_box(cell: tuple[int, int, int]) -> tuple[int, int, int, int]:
    """The pixel box of the shape drawn in ``cell``: the cell less a margin."""
    x, y, side = cell
    pad = max(1, side // 6)
    return (x + pad, y + pad, x + side - pad, y + side - pad)


def _draw_shape(draw: ImageDraw.ImageDraw, kind: str, cell: tuple[int, int, int], colour: tuple[int, int, int]):
    box = shape_box(cell)
    (draw.ellipse if kind == "circle" else draw.rectangle)(box, fill=colour)
    return box


def _reading_order(cells: list[tuple[int, int, int]]) -> list[int]:
    return sorted(range(len(cells)), key=lambda i: (cells[i][1], cells[i][0]))


# level -> (targets low, targets high, distractors)
SHAPES_SPEC = {1: (1, 2, 1), 2: (1, 3, 2), 3: (2, 4, 3), 4: (3, 6, 4)}


def make_shapes(rng: random.Random, level: int) -> VisualProblem:
    low, high, distractors = SHAPES_SPEC[level]
    targets = rng.randint(low, high)
    width, height = image_size(rng)
    target, *others = rng.sample(list(COLOURS), 1 + min(distractors, 3))
    colours = [target] * targets + [rng.choice(others) for _ in range(distractors)]
    cells = _fit_cells(width, height, len(colours), rng)
    image = Image.new("RGB", (width, height), BACKGROUND)
    draw = ImageDraw.Draw(image)
    kinds = [rng.choice(["circle", "square"]) for _ in colours]
    for colour, kind, cell in zip(colours, kinds, cells):
        _draw_shape(draw, kind, cell, COLOURS[colour])
    order = _reading_order(cells)
    caption = "Shapes in reading order: " + ", ".join(f"{colours[i]} {kinds[i]}" for i in order) + "."
    count, steps = 0, []
    for i in order:
        if colours[i] == target:
            count += 1
            steps.append(f"{colours[i]}, count {count}")
        else:
            steps.append(f"{colours[i]}, count {count}")
    steps.append(f"There are {count} {target} shapes.")
    return VisualProblem("shapes", level, f"How many {target} shapes are in the image?", str(count), tuple(steps),
                         image, caption)


def _fit_cells(width: int, height: int, count: int, rng: random.Random) -> list[tuple[int, int, int]]:
    """Cells for ``count`` shapes; an image too small for them is enlarged along its longer side."""
    while True:
        try:
            return _slots(width, height, count, rng)
        except ValueError:
            width, height = (width * 2, height) if width >= height else (width, height * 2)


OCR_ALPHABET = {1: "0123456789", 2: "0123456789", 3: "abcdefghkmnprstuvwxyz", 4: "abcdefghkmnprstuvwxyz0123456789"}
OCR_LENGTH = {1: 2, 2: 4, 3: 4, 4: 6}


def make_ocr(rng: random.Random, level: int) -> VisualProblem:
    text = "".join(rng.choice(OCR_ALPHABET[level]) for _ in range(OCR_LENGTH[level]))
    width, height = image_size(rng)
    font_size = max(10, min(height - 4, (width - 8) // len(text) * 5 // 3))
    font = ImageFont.load_default(size=font_size)
    image = Image.new("RGB", (width, height), BACKGROUND)
    draw = ImageDraw.Draw(image)
    left, top, right, bottom = draw.textbbox((0, 0), text, font=font)
    if right - left > width - 4 or bottom - top > height - 4:  # too tall: a 1:20 strip, write downwards
        image = Image.new("RGB", (max(width, font_size + 8), max(height, (font_size + 4) * len(text) + 8)),
                          BACKGROUND)
        draw = ImageDraw.Draw(image)
        for i, char in enumerate(text):
            draw.text((4, 4 + i * (font_size + 4)), char, fill=(0, 0, 0), font=font)
    else:
        x = rng.randint(2, max(2, width - (right - left) - 2)) - left
        y = rng.randint(2, max(2, height - (bottom - top) - 2)) - top
        draw.text((x, y), text, fill=(0, 0, 0), font=font)
    steps = tuple(f"character {i + 1}: {char}" for i, char in enumerate(text)) + (f"The text is {text}.",)
    return VisualProblem("ocr", level, "What text is written in the image?", text, steps, image,
                         f"The image shows the text {text}.")


# level -> distractor shapes around the one target
GROUNDING_DISTRACTORS = {1: 0, 2: 1, 3: 2, 4: 4}


def make_grounding(rng: random.Random, level: int) -> VisualProblem:
    width, height = image_size(rng)
    distractors = GROUNDING_DISTRACTORS[level]
    target, *others = rng.sample(list(COLOURS), 4)
    cells = _fit_cells(width, height, 1 + distractors, rng)
    size = (max(width, max(x + s for x, _, s in cells)), max(height, max(y + s for _, y, s in cells)))
    image = Image.new("RGB", size, BACKGROUND)
    draw = ImageDraw.Draw(image)
    kinds, colours = [rng.choice(["circle", "square"])], [target]
    for _ in cells[1:]:  # kind, then colour, per distractor: the draw order the held-out items were made with
        kinds.append(rng.choice(["circle", "square"]))
        colours.append(rng.choice(others))
    boxes = [normalise_box(_draw_shape(draw, kind, cell, COLOURS[colour]), image.size)
             for colour, kind, cell in zip(colours, kinds, cells)]
    caption = " ".join(f"A {colours[i]} {kinds[i]} at [{', '.join(map(str, boxes[i]))}]."
                       for i in _reading_order(cells))
    normalised = boxes[0]
    steps = (f"The {target} shape spans x {normalised[0]} to {normalised[2]}, y {normalised[1]} to {normalised[3]}.",)
    answer = f"[{normalised[0]}, {normalised[1]}, {normalised[2]}, {normalised[3]}]"
    return VisualProblem("grounding", level, f"Where is the {target} shape? Answer with its box.", answer, steps, image,
                         caption)


def normalise_box(box: tuple[int, int, int, int], size: tuple[int, int]) -> tuple[int, int, int, int]:
    """Pixel box -> GLM-4.1V's integer coordinates in 0..1000 of the image's width and height."""
    width, height = size
    x1, y1, x2, y2 = box
    return (round(1000 * x1 / width), round(1000 * y1 / height), round(1000 * x2 / width), round(1000 * y2 / height))


CHART_BARS = {1: 2, 2: 3, 3: 4, 4: 5}
LETTERS = "ABCDE"


def make_chart(rng: random.Random, level: int) -> VisualProblem:
    bars = CHART_BARS[level]
    values = rng.sample(range(1, 10), bars)
    width, height = image_size(rng)
    width = max(width, 14 * bars)
    height = max(height, 28)
    image = Image.new("RGB", (width, height), BACKGROUND)
    draw = ImageDraw.Draw(image)
    slot = width // bars
    for i, value in enumerate(values):
        top = height - round((height - 2) * value / 9)
        draw.rectangle((i * slot + slot // 5, top, (i + 1) * slot - slot // 5, height - 1),
                       fill=COLOURS[list(COLOURS)[i % len(COLOURS)]])
    kind = rng.choice(["tallest", "shortest"])
    pick: Callable[[list[int]], int] = max if kind == "tallest" else min
    best = values.index(pick(values))
    steps = tuple(f"({LETTERS[i]}) height {v}" for i, v in enumerate(values))
    steps += (f"The {kind} is ({LETTERS[best]}).",)
    options = " ".join(f"({LETTERS[i]})" for i in range(bars))
    prompt = f"The bars are {options} from left to right. Which bar is the {kind}?"
    caption = "A bar chart, bars from left to right: " + ", ".join(
        f"({LETTERS[i]}) height {v}" for i, v in enumerate(values)) + "."
    return VisualProblem("chart", level, prompt, LETTERS[best], steps, image, caption)


MAKERS: dict[str, Callable[[random.Random, int], VisualProblem]] = {
    "shapes": make_shapes, "ocr": make_ocr, "grounding": make_grounding, "chart": make_chart,
}


def make_visual(domain: str, level: int, rng: random.Random) -> VisualProblem:
    if domain not in MAKERS:
        raise ValueError(f"unknown image domain {domain!r}; known: {sorted(MAKERS)}")
    if level not in (1, 2, 3, 4):
        raise ValueError(f"level must be 1-4, got {level}")
    return MAKERS[domain](rng, level)


def generate_visual(count_per_level: int, seed: int | str, domains: list[str], levels: tuple[int, ...],
                    exclude_ids: set[str] | None = None) -> list[VisualProblem]:
    """``rlcs.tasks.generate`` for the image domains: deterministic for a seed, distinct, none of
    ``exclude_ids`` (the held-out split)."""
    from rlcs.tasks import generate

    return generate(count_per_level, seed, domains, levels, exclude_ids, make=make_visual)


def example_row(problem: VisualProblem, image_path: str) -> dict:
    """The RL / eval row; ``image_path`` relative to the JSONL file's folder."""
    return {"id": problem.id, "domain": problem.domain, "level": problem.level, "prompt": problem.prompt,
            "answer": problem.answer, "images": [image_path]}


def caption_row(problem: VisualProblem, image_path: str) -> dict:
    """The image-caption pretraining document (``rlcs pretrain``: the caption is trained given the image)."""
    return {"text": problem.caption, "images": [image_path]}


def sft_row(problem: VisualProblem, image_path: str) -> dict:
    """The long-CoT SFT row in the GLM-4.1V-Thinking format (the same boxes as the text domains)."""
    from rlcs.tasks import BOX_CLOSE, BOX_OPEN

    response = f"<think>{problem.reasoning()}</think><answer>{BOX_OPEN}{problem.answer}{BOX_CLOSE}</answer>"
    return {**example_row(problem, image_path), "response": response}

