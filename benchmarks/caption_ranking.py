"""Does the tiny GLM-4V read where a shape is and what text says? Level-1 held-out captions, ranked.

    python benchmarks/caption_ranking.py [--models LABEL=DIR,...] [--data data/tiny-vl] [--items 20] [--section NAME]

For each level-1 held-out caption of two image domains, every answer the image could hold is written into the
caption and scored by the model's summed loss given the image; the caption is read when the true one is the
cheapest:
- grounding: "A red square at [x1, y1, x2, y2]." over the box of every cell a lone shape can sit in at that
  image size (4 to 8 for most images, 80 for the 20:1 strips; rlcs/tasks/visual.py);
- ocr: "The image shows the text NN." over all 100 two-digit texts.
Chance is the mean of 1 / candidates. A caption whose loss drops with its own image
(benchmarks/image_spread.py) may be reading only its colour words; this asks for the position and the glyphs.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from itertools import product
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from image_spread import caption_batch  # noqa: E402
from report import check_section, machine, write_section  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
DEFAULT_MODELS = ("pretrain=outputs/bench-pipeline-tiny-vl/pretrain/model,"
                  "sft=outputs/bench-pipeline-tiny-vl/sft/model,"
                  "pretrain-mb8=outputs/bench-pipeline-tiny-vl-mb8/pretrain/model")


def lone_shape_boxes(width: int, height: int) -> list[tuple[int, int, int, int]]:
    """Every box a level-1 grounding shape (one shape, no distractors) can have in a width x height image,
    in 0-1000 coordinates: the cells rlcs.tasks.visual lays one shape into."""
    from rlcs.tasks.visual import cell_grid, normalise_box, shape_box

    return [normalise_box(shape_box(cell), (width, height)) for cell in cell_grid(width, height, 1)]


def candidates(domain: str, caption: str, size: tuple[int, int]) -> list[str]:
    if domain == "grounding":
        head = caption.split(" at [")[0]
        return [f"{head} at [{', '.join(map(str, box))}]." for box in lone_shape_boxes(*size)]
    from rlcs.tasks.visual import OCR_ALPHABET, OCR_LENGTH

    return [f"The image shows the text {''.join(t)}." for t in product(OCR_ALPHABET[1], repeat=OCR_LENGTH[1])]


def answer_of(caption: str) -> str:
    """The answer part of a ranked caption: the box, or the text."""
    answer = caption.split(" at ")[-1] if " at [" in caption else caption.removeprefix("The image shows the text ")
    return answer.removesuffix(".")


def rank_captions(model_dir: Path, data: Path, items: int) -> dict[str, tuple[int, int, float, float]]:
    """Per domain: (captions whose true text is the cheapest, captions ranked, chance, share of the cheapest
    candidates' characters that are right: for ocr, each of the two digits; for grounding, 1 or 0 per box)."""
    import torch
    from PIL import Image

    from rlcs.config import ModelConfig
    from rlcs.runtime import load_model, load_processor

    config = ModelConfig(path=str(model_dir))
    model, processor = load_model(config).eval(), load_processor(config)
    rows = [json.loads(line) for line in (data / "eval.jsonl").read_text().splitlines()]
    held_out = {row["images"][0]: row for row in rows if row.get("images")}
    captions = [json.loads(line) for line in (data / "pretrain_eval.jsonl").read_text().splitlines()]

    def summed_loss(text: str, image: str) -> float:
        batch = caption_batch(processor, text, data / image)
        predicted = int((batch["labels"][:, 1:] != -100).sum())
        with torch.no_grad():
            return model(**batch).loss.item() * predicted

    result = {}
    for domain in ("grounding", "ocr"):
        level_one = [c for c in captions if c.get("images") and held_out.get(c["images"][0], {}).get("domain") == domain
                     and held_out[c["images"][0]]["level"] == 1][:items]
        right, chances, characters = 0, [], []
        for caption in level_one:
            image = caption["images"][0]
            options = candidates(domain, caption["text"], Image.open(data / image).size)
            if caption["text"] not in options:
                raise ValueError(f"{image}: its caption {caption['text']!r} is not among the candidates")
            losses = [summed_loss(text, image) for text in options]
            cheapest = options[losses.index(min(losses))]
            right += cheapest == caption["text"]
            chances.append(1 / len(options))
            said, truth = answer_of(cheapest), answer_of(caption["text"])
            characters.append(statistics.mean(a == b for a, b in zip(said, truth)) if domain == "ocr"
                              else float(said == truth))
        result[domain] = (right, len(level_one), statistics.mean(chances), statistics.mean(characters))
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", default=DEFAULT_MODELS, help="comma-separated LABEL=MODEL_DIR")
    parser.add_argument("--data", default="data/tiny-vl", help="the suite the models were trained on")
    parser.add_argument("--items", type=int, default=20, help="level-1 held-out captions per domain")
    parser.add_argument("--section", default="caption_ranking", help="docs/benchmarks.md section (caption_ranking...)")
    args = parser.parse_args()
    check_section(parser, args.section, "caption_ranking")
    models = [item.split("=", 1) for item in args.models.split(",")]
    if any(len(m) != 2 or not (REPO / m[1] / "config.json").exists() for m in models):
        parser.error(f"--models: each entry is LABEL=DIR with a saved model in DIR; got {args.models}")
    lines = []
    for label, directory in models:
        ranked = rank_captions(REPO / directory, REPO / args.data, args.items)
        right, of, chance, _ = ranked["grounding"]
        cells = f"{right}/{of} (chance {chance:.0%})"
        right, of, chance, digits = ranked["ocr"]
        cells += f" | {right}/{of} (chance {chance:.0%}) | {digits:.0%} (chance 10%)"
        lines.append(f"| {label} (`{directory}`) | {cells} |")
        print(lines[-1], flush=True)
    elsewhere = "" if args.section == "caption_ranking" else f" --section {args.section}"
    write_section(args.section, f"""
## Does the tiny GLM-4V read where a shape is and what text says? Level-1 captions ranked

Command: `python benchmarks/caption_ranking.py --models {args.models} --data {args.data}
--items {args.items}{elsewhere}`.
Level-1 held-out captions of `{args.data}/pretrain_eval.jsonl`: the true caption against the same caption with
every other answer the image could hold (grounding: the box of each cell a lone shape can sit in; ocr: all 100
two-digit texts), scored by the model's summed loss given the image. A cell counts the captions whose true
text is the cheapest. Machine: {machine()}.

| model | grounding: true box cheapest | ocr: true text cheapest | ocr: digits right in the cheapest |
|---|---|---|---|
{chr(10).join(lines)}
""")


if __name__ == "__main__":
    main()
