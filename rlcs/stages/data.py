"""`rlcs data`: write the synthetic task suite's splits.

The evaluation split is drawn first and its ids are excluded from every
training split, so held-out accuracy is measured on unseen items.
"""

from __future__ import annotations

import random
from collections import Counter
from pathlib import Path

from rlcs import tasks
from rlcs.config import SuiteRecipe, dump_recipe
from rlcs.data import write_jsonl
from rlcs.tasks import drills, visual


def run(recipe: SuiteRecipe) -> dict[str, int]:
    out = Path(recipe.output_dir)
    levels = tuple(recipe.levels)
    text_domains = [d for d in recipe.domains if d not in visual.VISUAL_DOMAINS]
    image_domains = [d for d in recipe.domains if d in visual.VISUAL_DOMAINS]

    short: list[str] = []  # (split, domain, level) draws whose problem space ran out before the count

    def counted(problems: list, count: int, salt: str, domains: list[str], at_levels: tuple[int, ...]) -> list:
        drawn = Counter((p.domain, p.level) for p in problems)
        short.extend(f"{salt} {d} level {level}: {drawn[(d, level)]} of {count}"
                     for d in domains for level in at_levels if drawn[(d, level)] < count)
        return problems

    def draw(count: int, salt: str, exclude: set[str], at_levels: tuple[int, ...] = levels) -> list[tasks.Problem]:
        if not text_domains:
            return []
        problems = tasks.generate(count, seed=f"{recipe.seed}:{salt}", domains=text_domains, levels=at_levels,
                                  exclude_ids=exclude)
        return counted(problems, count, salt, text_domains, at_levels)

    def draw_images(count: int, salt: str, exclude: set[str],
                    at_levels: tuple[int, ...] = levels) -> list[visual.VisualProblem]:
        problems = visual.generate_visual(count, f"{recipe.seed}:{salt}", image_domains, at_levels, exclude)
        return counted(problems, count, salt, image_domains, at_levels)

    def draw_per_level(drawer, counts: dict[int, int], salt: str, exclude: set[str]) -> list:
        """Rows of ``counts`` per level, ordered by domain, then level ascending. Problems come from one seed
        per (domain, level), so with equal counts this gives the rows of one draw over every level, and its
        order too when the recipe lists its ``levels`` ascending."""
        rows = [p for level, count in sorted(counts.items()) for p in drawer(count, salt, exclude, (level,))]
        return sorted(rows, key=lambda p: recipe.domains.index(p.domain))

    sft_counts = recipe.counts_per_level("sft_per_level")
    rl_counts = recipe.counts_per_level("rl_per_level")

    caption_counts = recipe.counts_per_level("pretrain_images_per_level")
    if any(caption_counts.values()) and not image_domains:
        raise ValueError(f"pretrain_images_per_level asks for image-caption documents "
                         f"({recipe.pretrain_images_per_level} per image domain and level), but domains "
                         f"{recipe.domains} has none of {list(visual.VISUAL_DOMAINS)}")
    held_out = draw(recipe.eval_per_level, "eval", set())
    held_out_ids = {p.id for p in held_out}
    rl = draw_per_level(draw, rl_counts, "rl", held_out_ids)
    sft = draw_per_level(draw, sft_counts, "sft", held_out_ids)
    pretrain = draw(recipe.pretrain_per_level, "pretrain", held_out_ids)
    drill_rng = random.Random(f"{recipe.seed}:drills")
    documents = [{"text": p.document()} for p in pretrain]
    documents += [{"text": drills.document(drill_rng)} for _ in range(recipe.pretrain_drills)]
    documents += [{"text": drills.lookup_document(drill_rng)} for _ in range(recipe.pretrain_lookups)]
    random.Random(recipe.seed).shuffle(documents)

    sft_ids = {p.id for p in sft}
    unworked = [p for level, count in sorted(recipe.counts_per_level("sft_unworked_per_level").items())
                for p in draw(count, "sft-unworked", held_out_ids | sft_ids, (level,))]
    splits = {
        "eval.jsonl": [p.example() for p in held_out],
        "rl.jsonl": [p.example() for p in rl],
        "sft.jsonl": [p.sft_row() for p in sft] + [p.sft_row(worked=False) for p in unworked],
        "sft_eval.jsonl": [p.sft_row() for p in held_out],
        "pretrain.jsonl": documents,
        "pretrain_eval.jsonl": [{"text": p.document()} for p in held_out],
    }
    if image_domains:
        image_held_out = draw_images(recipe.eval_per_level, "eval", set())
        exclude = {p.id for p in image_held_out}
        image_rl = draw_per_level(draw_images, rl_counts, "rl", exclude)
        image_sft = draw_per_level(draw_images, sft_counts, "sft", exclude)
        # one count for every level draws over ``levels`` in their order, as it always has
        image_pretrain = (draw_images(recipe.pretrain_images_per_level, "pretrain", exclude)
                          if isinstance(recipe.pretrain_images_per_level, int)
                          else draw_per_level(draw_images, caption_counts, "pretrain", exclude))
        # each image once, named by its content id, beside the JSONL files that point at it
        paths = {p.id: _save_image(p, out) for p in image_held_out + image_rl + image_sft + image_pretrain}
        captions = [visual.caption_row(p, paths[p.id]) for p in image_pretrain]
        if captions:
            splits["pretrain.jsonl"] = documents + captions
            random.Random(f"{recipe.seed}:captions").shuffle(splits["pretrain.jsonl"])
            splits["pretrain_eval.jsonl"] += [visual.caption_row(p, paths[p.id]) for p in image_held_out]
        splits["eval.jsonl"] += [visual.example_row(p, paths[p.id]) for p in image_held_out]
        splits["rl.jsonl"] += [visual.example_row(p, paths[p.id]) for p in image_rl]
        splits["sft.jsonl"] += [visual.sft_row(p, paths[p.id]) for p in image_sft]
        splits["sft_eval.jsonl"] += [visual.sft_row(p, paths[p.id]) for p in image_held_out]
        held_out = [*held_out, *image_held_out]
    for name, rows in splits.items():
        write_jsonl(rows, out / name)
    dump_recipe(recipe, out / "recipe.yaml")
    counts = {name: len(rows) for name, rows in splits.items()}
    per_domain = Counter(p.domain for p in held_out)
    print(f"wrote the task suite to {out}: {counts}; eval per domain {dict(per_domain)}"
          + (f"; of the SFT rows, {len(unworked)} are unworked" if unworked else ""))
    if short:  # a small problem space holds fewer distinct problems than asked: say so rather than pad
        print(f"note: {len(short)} draws found fewer distinct problems than asked (the rest of the space is "
              f"held out or already drawn): {'; '.join(short)}")
    return counts


def _save_image(problem: visual.VisualProblem, out: Path) -> str:
    relative = f"images/{problem.id}.png"
    path = out / relative
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(problem.png())
    return relative
