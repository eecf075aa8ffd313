"""The Pillow-drawn image domains: every domain and level draws, its answer is right for what is drawn, and
the domain verifiers grade it (full marks for the trace's answer, partial or none for a wrong one)."""

from __future__ import annotations

import random
import re

import pytest

from rewards.registry import get as get_verifier
from rlcs.tasks.visual import COLOURS, VISUAL_DOMAINS, make_visual

from .conftest import load_benchmark

VERIFIER = {"shapes": "math", "ocr": "ocr", "grounding": "grounding", "chart": "choice"}


def boxed(answer: str) -> str:
    return f"<think>x</think><answer><|begin_of_box|>{answer}<|end_of_box|></answer>"


@pytest.mark.parametrize("domain", VISUAL_DOMAINS)
def test_every_level_draws_and_its_answer_earns_full_reward(domain):
    rng = random.Random(0)
    verifier = get_verifier(VERIFIER[domain])
    for level in (1, 2, 3, 4):
        for _ in range(10):
            problem = make_visual(domain, level, rng)
            assert problem.image.mode == "RGB" and min(problem.image.size) >= 14
            assert problem.steps and problem.answer in problem.steps[-1] or domain == "grounding"
            example = {"answer": problem.answer, "domain": domain}
            assert verifier(boxed(problem.answer), example) == 1.0


def test_sizes_include_very_wide_and_very_tall_images():
    rng = random.Random(1)
    ratios = [p.image.size[0] / p.image.size[1] for p in (make_visual("shapes", 1, rng) for _ in range(200))]
    assert max(ratios) >= 15 and min(ratios) <= 1 / 15
    assert sum(0.5 <= r <= 2 for r in ratios) > 100  # most images are not extreme


def test_shape_count_matches_the_pixels():
    """Count connected blobs of the target colour in the drawn image: the answer must equal that."""
    rng = random.Random(2)
    for level in (1, 2, 3, 4):
        problem = make_visual("shapes", level, rng)
        target = problem.prompt.split()[2]
        assert _blobs(problem.image, COLOURS[target]) == int(problem.answer)


def test_grounding_box_covers_the_target_colour_and_nothing_else_of_it():
    rng = random.Random(3)
    for level in (1, 2, 3, 4):
        problem = make_visual("grounding", level, rng)
        target = COLOURS[problem.prompt.split()[3]]
        width, height = problem.image.size
        x1, y1, x2, y2 = (int(v) for v in problem.answer.strip("[]").split(","))
        assert 0 <= x1 < x2 <= 1000 and 0 <= y1 < y2 <= 1000
        centre = (round((x1 + x2) / 2000 * width), round((y1 + y2) / 2000 * height))
        assert problem.image.getpixel(centre) == target
        assert _blobs(problem.image, target) == 1


def test_captions_describe_what_is_drawn():
    """The caption pretraining documents state the facts the questions ask about, read off the same drawing."""
    rng = random.Random(6)
    for level in (1, 2, 3, 4):
        shapes = make_visual("shapes", level, rng)
        target = shapes.prompt.split()[2]
        named = shapes.caption.removeprefix("Shapes in reading order: ").rstrip(".").split(", ")
        assert sum(item.split()[0] == target for item in named) == int(shapes.answer)
        assert len(named) == _blobs_any(shapes.image)
        ocr = make_visual("ocr", level, rng)
        assert ocr.caption == f"The image shows the text {ocr.answer}."
        grounding = make_visual("grounding", level, rng)
        target = grounding.prompt.split()[3]
        assert f"A {target} " in grounding.caption and grounding.answer in grounding.caption
        described = re.findall(r"A (\w+) (circle|square) at \[(\d+), (\d+), (\d+), (\d+)\]", grounding.caption)
        assert len(described) == 1 + level_distractors(level)
        width, height = grounding.image.size
        for colour, _, *box in described:
            x1, y1, x2, y2 = map(int, box)
            centre = (round((x1 + x2) / 2000 * width), round((y1 + y2) / 2000 * height))
            assert grounding.image.getpixel(centre) == COLOURS[colour]
        chart = make_visual("chart", level, rng)
        heights = [int(part.split()[-1].rstrip(".")) for part in chart.caption.split(": ")[1].split(", ")]
        pick = max if "tallest" in chart.prompt else min
        assert "ABCDE"[heights.index(pick(heights))] == chart.answer


def level_distractors(level: int) -> int:
    from rlcs.tasks.visual import GROUNDING_DISTRACTORS

    return GROUNDING_DISTRACTORS[level]


def _blobs_any(image) -> int:
    """Connected blobs of any non-background colour."""
    return sum(_blobs(image, colour) for colour in COLOURS.values())


def test_a_wrong_answer_scores_below_full():
    rng = random.Random(4)
    ocr = make_visual("ocr", 2, rng)
    partly = ocr.answer[:-1] + ("0" if ocr.answer[-1] != "0" else "1")
    assert 0 < get_verifier("ocr")(boxed(partly), {"answer": ocr.answer}) < 1
    box = make_visual("grounding", 1, rng)
    assert get_verifier("grounding")(boxed("[0, 0, 5, 5]"), {"answer": box.answer}) == 0.0
    chart = make_visual("chart", 1, rng)
    wrong = "B" if chart.answer == "A" else "A"
    assert get_verifier("choice")(boxed(wrong), {"answer": chart.answer}) == 0.0


def test_ids_differ_with_the_pixels_and_unknown_names_are_refused():
    rng = random.Random(5)
    ids = {make_visual("chart", 1, rng).id for _ in range(30)}
    assert len(ids) > 20
    with pytest.raises(ValueError, match="unknown image domain"):
        make_visual("video", 1, rng)
    with pytest.raises(ValueError, match="level"):
        make_visual("ocr", 5, rng)


def _blobs(image, colour) -> int:
    """4-connected components of exactly ``colour``."""
    width, height = image.size
    pixels = image.load()
    seen, count = set(), 0
    for x in range(width):
        for y in range(height):
            if (x, y) in seen or pixels[x, y] != colour:
                continue
            count += 1
            stack = [(x, y)]
            seen.add((x, y))
            while stack:
                cx, cy = stack.pop()
                for nx, ny in ((cx + 1, cy), (cx - 1, cy), (cx, cy + 1), (cx, cy - 1)):
                    if 0 <= nx < width and 0 <= ny < height and (nx, ny) not in seen and pixels[nx, ny] == colour:
                        seen.add((nx, ny))
                        stack.append((nx, ny))
    return count


def test_caption_documents_without_an_image_domain_are_refused(tmp_path):
    from rlcs.config import SuiteRecipe, validate_recipe
    from rlcs.stages import data as data_stage

    suite = validate_recipe({"output_dir": str(tmp_path), "domains": ["arithmetic"], "levels": [1],
                             "eval_per_level": 1, "rl_per_level": 1, "sft_per_level": 1, "pretrain_per_level": 1,
                             "pretrain_images_per_level": 2}, SuiteRecipe)
    with pytest.raises(ValueError, match=r"pretrain_images_per_level asks for .*\(2 per image domain and level\).* has "
                       "none of"):
        data_stage.run(suite)


def test_caption_documents_per_level(tmp_path):
    """``pretrain_images_per_level`` as level -> count draws that many captions per image domain and level
    (the levels it omits get none); a level outside ``levels`` is a recipe error."""
    import json
    from collections import Counter
    from pathlib import Path

    from rlcs.config import SuiteRecipe, validate_recipe
    from rlcs.stages import data as data_stage

    base = {"output_dir": str(tmp_path), "domains": ["arithmetic", "shapes", "ocr"], "levels": [1, 2, 3],
            "eval_per_level": 1, "rl_per_level": 1, "sft_per_level": 1, "pretrain_per_level": 1}
    data_stage.run(validate_recipe({**base, "pretrain_images_per_level": {1: 3, 2: 1}}, SuiteRecipe))
    captions = [json.loads(line) for line in (tmp_path / "pretrain.jsonl").read_text().splitlines()]
    captions = [row for row in captions if row.get("images")]
    for row in captions:
        assert (tmp_path / row["images"][0]).exists()
    per_domain = Counter(Path(row["images"][0]).name.split("-")[0] for row in captions)
    assert per_domain == {"shapes": 4, "ocr": 4}, per_domain
    # the same for every level as a single count: one draw over every level
    data_stage.run(validate_recipe({**base, "output_dir": str(tmp_path / "even"),
                                    "pretrain_images_per_level": {1: 2, 2: 2, 3: 2}}, SuiteRecipe))
    data_stage.run(validate_recipe({**base, "output_dir": str(tmp_path / "single"),
                                    "pretrain_images_per_level": 2}, SuiteRecipe))
    assert (tmp_path / "even/pretrain.jsonl").read_text() == (tmp_path / "single/pretrain.jsonl").read_text()
    with pytest.raises(ValueError, match=r"pretrain_images_per_level names levels \[4\]"):
        validate_recipe({**base, "pretrain_images_per_level": {4: 2}}, SuiteRecipe)
    with pytest.raises(ValueError, match="pretrain_images_per_level is an empty mapping"):
        validate_recipe({**base, "pretrain_images_per_level": {}}, SuiteRecipe)
    for negative in (-1, {1: -1}):
        with pytest.raises(ValueError, match="pretrain_images_per_level"):
            validate_recipe({**base, "levels": [], "pretrain_images_per_level": negative}, SuiteRecipe)
    # no image domain: a mapping of zeros asks for nothing, as 0 does
    text_only = {**base, "domains": ["arithmetic"], "output_dir": str(tmp_path / "text")}
    data_stage.run(validate_recipe({**text_only, "pretrain_images_per_level": {1: 0}}, SuiteRecipe))


def test_caption_ranking_candidates_hold_every_level_one_answer():
    """benchmarks/caption_ranking.py ranks a level-1 caption against every box a lone shape can have and every
    two-digit text: the true answer must be among them, or the benchmark measures nothing."""
    ranking = load_benchmark("caption_ranking")
    rng = random.Random(11)
    for _ in range(200):
        for domain in ("grounding", "ocr"):
            problem = make_visual(domain, 1, rng)
            options = ranking.candidates(domain, problem.caption, problem.image.size)
            assert options.count(problem.caption) == 1
            assert ranking.answer_of(problem.caption) == problem.answer
