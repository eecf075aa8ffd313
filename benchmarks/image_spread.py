"""Image tokens that stop varying: `train/image_token_spread` (rlcs.image_spread) of the tiny GLM-4V through
image-caption pretraining, for the recipe's model at three learning rates and a wider decoder at two projector
learning rates.

    python benchmarks/image_spread.py [--steps 800] [--out outputs/bench-image-spread]

The data is recipes/tiny-vl/data.yaml with its image domains only. Each variant is built by `rlcs init` from
recipes/tiny-vl/init.yaml (the wide one with a 128-wide, 4-layer decoder, the text recipe's size) and
pretrained for --steps steps with recipes/tiny-vl/pretrain.yaml. The spread is near 1 when the image tokens
differ as much as they are large, and near 0 when every image token is the same vector (the decoder is then
told nothing about the image).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from report import machine, write_section  # noqa: E402

from rlcs.metrics import read_metrics  # noqa: E402
from rlcs.tasks.visual import VISUAL_DOMAINS  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
WIDE = [f"model.config.text_config.{key}={value}" for key, value in
        [("hidden_size", 128), ("intermediate_size", 384), ("num_hidden_layers", 4), ("num_attention_heads", 4),
         ("num_key_value_heads", 4)]] + ["model.config.vision_config.out_hidden_size=128"]
LOG_EVERY = 10
# caption documents per image domain and level: the data every variant was measured on (the recipe now asks for
# more at level 1, docs/vision.md)
CAPTIONS = 150
SLOW_TOWER = ["optim.lr_vision=5e-4", "optim.lr_projector=5e-4"]
# every variant names its rate (the tiny-vl recipe's own changed from 2e-3 to 5e-4); the run directory "recipe"
# holds the recipe's model size
VARIANTS = [
    ("64-wide decoder (the recipe's size), lr 2e-3", "recipe", [], ["optim.lr=2e-3"]),
    ("64-wide decoder, lr 1e-3", "lr-1e-3", [], ["optim.lr=1e-3"]),
    ("64-wide decoder, lr 5e-4", "lr-5e-4", [], ["optim.lr=5e-4"]),
    ("128-wide decoder, lr 2e-3", "wide", WIDE, ["optim.lr=2e-3"]),
    ("128-wide decoder, vision and projector lr 5e-4", "wide-slow-tower", WIDE, ["optim.lr=2e-3", *SLOW_TOWER]),
]


def rlcs(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "rlcs.cli", *args], cwd=REPO, check=True,
                   env={**os.environ, "WANDB_MODE": "disabled"})


def caption_batch(processor, text: str, image: Path) -> dict:
    """One image-caption document as the model's batch of one, labels on the caption's tokens (as pretraining
    trains it)."""
    from rlcs.chat import tokenize_image_document
    from rlcs.packing import collate, padded_rows
    from rlcs.vision import pixel_inputs

    sequence = tokenize_image_document(processor, text, [str(image)])
    rows, _ = padded_rows([sequence], seq_len=len(sequence.input_ids))
    return collate(rows, processor.tokenizer.pad_token_id, load_pixels=pixel_inputs(processor))


def caption_loss_own_and_swapped(model_dir: Path, data: Path, per_domain: int = 16) -> dict[str, tuple[float, float]]:
    """Per image domain: the mean held-out caption loss given each caption's own image, and given the next
    caption's image (same domain). Equal losses: the decoder does not use the image."""
    import json

    import torch

    from rlcs.config import ModelConfig
    from rlcs.runtime import load_model, load_processor

    config = ModelConfig(path=str(model_dir))
    model, processor = load_model(config).eval(), load_processor(config)
    rows = [json.loads(line) for line in (data / "pretrain_eval.jsonl").read_text().splitlines()]
    rows = [r for r in rows if r.get("images")]
    result = {}
    for domain in VISUAL_DOMAINS:
        mine = [r for r in rows if Path(r["images"][0]).name.startswith(f"{domain}-")][:per_domain]
        losses = {"own": 0.0, "swapped": 0.0}
        for i, row in enumerate(mine):
            for kind, image in (("own", row["images"][0]), ("swapped", mine[(i + 1) % len(mine)]["images"][0])):
                batch = caption_batch(processor, row["text"], data / image)
                with torch.no_grad():
                    losses[kind] += model(**batch).loss.item() / len(mine)
        result[domain] = (losses["own"], losses["swapped"])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=800)
    parser.add_argument("--out", default="outputs/bench-image-spread")
    args = parser.parse_args()
    out = REPO / args.out
    data = out / "data"
    if args.steps % LOG_EVERY:
        parser.error(f"--steps must be a multiple of {LOG_EVERY} (the logging interval)")
    if not (data / "pretrain.jsonl").exists():
        rlcs("data", "--config", "recipes/tiny-vl/data.yaml", f"output_dir={data}",
             f"domains=[{', '.join(VISUAL_DOMAINS)}]", f"pretrain_images_per_level={CAPTIONS}")
    asked = yaml.safe_load((data / "recipe.yaml").read_text())["pretrain_images_per_level"]
    if asked != CAPTIONS:  # finished runs are read again, so their data must be the one the table describes
        raise SystemExit(f"{data} holds {asked} captions per domain and level, not {CAPTIONS}; use another --out")
    checkpoints = sorted({LOG_EVERY, args.steps} | {round(args.steps * f / LOG_EVERY) * LOG_EVERY
                                                    for f in (1 / 8, 1 / 4, 1 / 2)})
    lines, seconds = [], 0.0
    for title, name, init_overrides, train_overrides in VARIANTS:
        run = out / name / "pretrain"
        if not (run / "model").exists():  # a finished run of these --steps is read again, not retrained
            rlcs("init", "--config", "recipes/tiny-vl/init.yaml", f"output_dir={out / name / 'init'}",
                 f"tokenizer.corpus=[{data / 'pretrain.jsonl'}]", *init_overrides)
            rlcs("pretrain", "--config", "recipes/tiny-vl/pretrain.yaml", f"output_dir={run}",
                 f"model.path={out / name / 'init/model'}", f"data.train={data / 'pretrain.jsonl'}",
                 f"data.eval={data / 'pretrain_eval.jsonl'}", f"train.max_steps={args.steps}",
                 f"train.eval_every={args.steps}", f"train.log_every={LOG_EVERY}", "train.resume=never",
                 "logging.wandb=false", *train_overrides)
        rows = read_metrics(run)
        if max(r["step"] for r in rows) != args.steps:
            raise SystemExit(f"{run} holds a run of {max(r['step'] for r in rows)} steps, not --steps {args.steps}; "
                             "use another --out")
        seconds += max(r.get("time/elapsed_s", 0.0) for r in rows)
        spread = {r["step"]: r["train/image_token_spread"] for r in rows if "train/image_token_spread" in r}
        loss = [r["train/loss"] for r in rows if "train/loss" in r]
        cells = " | ".join(f"{spread[s]:.3f}" if s in spread else "—" for s in checkpoints)
        use = caption_loss_own_and_swapped(out / name / "pretrain/model", data)
        uses = "; ".join(f"{d} {own:.3f} / {swapped:.3f}" for d, (own, swapped) in use.items())
        lines.append(f"| {title} | {cells} | {loss[-1]:.3f} | {uses} |")
        print(lines[-1], flush=True)
    header = ("| model, learning rates | " + " | ".join(f"step {s}" for s in checkpoints)
              + " | train loss at the end | caption loss, own / swapped image |")
    write_section("image_spread", f"""
## Image tokens that stop varying (tiny GLM-4V, image-caption pretraining)

Command: `python benchmarks/image_spread.py --steps {args.steps} --out {args.out}` ({seconds / 60:.0f} minutes of
pretraining). The image domains of `recipes/tiny-vl/data.yaml` with {CAPTIONS} captions per domain and level,
pretrained with `recipes/tiny-vl/pretrain.yaml` for
{args.steps} steps from a fresh `rlcs init`. `train/image_token_spread` (`rlcs.image_spread`) is the spread of
the image tokens the decoder is given, over their size: near 1 when they differ as much as they are large, 0
when every image token is the same vector. Logged as the mean over each {LOG_EVERY}-step window; one run per
variant. The last column: the held-out caption loss given each caption's own image / the next caption's
image of the same domain (16 per domain); equal losses mean the decoder does not use the image.
Machine: {machine()}.

{header}
|---|{'---|' * len(checkpoints)}---|---|
{chr(10).join(lines)}
""")


if __name__ == "__main__":
    main()
