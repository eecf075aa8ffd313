"""Does the tiny GLM-4V learn to read its images? Image-caption pretraining at level 1 only, by learning rate.

    python benchmarks/image_reading.py [--steps 1000] [--lrs 2e-3,1e-3,5e-4] [--out outputs/bench-image-reading]
                                       [--section image_reading-NAME key=value ...]

The image domains of `recipes/tiny-vl/data.yaml` at level 1 (the simplest images), `--captions` caption
documents per domain and nothing else, pretrained with `recipes/tiny-vl/pretrain.yaml` (micro-batch 8, one
caption per row) for `--steps` steps from one fresh `rlcs init`, once per learning rate. Every `--probe-every` steps the
checkpoint's held-out caption loss is taken with each caption's own image and with the next caption's image of
its domain (benchmarks/image_spread.py): a caption whose loss drops with its own image was read from it.
Trailing key=value overrides go to `rlcs init` (e.g. model.config.vision_config.hidden_size=64, another
model shape); they need a --section and an --out of their own.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from image_spread import LOG_EVERY, caption_loss_own_and_swapped, rlcs  # noqa: E402
from report import check_section, machine, write_section  # noqa: E402

from rlcs.metrics import read_metrics  # noqa: E402
from rlcs.tasks.visual import VISUAL_DOMAINS  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--probe-every", type=int, default=250)
    parser.add_argument("--lrs", default="2e-3,1e-3,5e-4")
    parser.add_argument("--captions", type=int, default=2000, help="level-1 caption documents per image domain")
    parser.add_argument("--out", default="outputs/bench-image-reading")
    parser.add_argument("--section", default="image_reading", help="docs/benchmarks.md section (image_reading...)")
    parser.add_argument("overrides", nargs="*", help="`rlcs init` overrides (key=value): another model shape")
    args = parser.parse_args()
    check_section(parser, args.section, "image_reading", args.overrides)
    if args.steps % args.probe_every or args.probe_every % LOG_EVERY:
        parser.error(f"--steps must be a multiple of --probe-every, and --probe-every of {LOG_EVERY} (the logging "
                     "interval, whose spread is reported at each probe)")
    out = REPO / args.out
    data = out / "data"
    if not (data / "pretrain.jsonl").exists():
        rlcs("data", "--config", "recipes/tiny-vl/data.yaml", f"output_dir={data}",
             f"domains=[{', '.join(VISUAL_DOMAINS)}]", "levels=[1]", "eval_per_level=16", "rl_per_level=0",
             "sft_per_level=0", "pretrain_per_level=0", "pretrain_drills=0", "pretrain_lookups=0",
             f"pretrain_images_per_level={args.captions}")
    if not (out / "init/model").exists():
        rlcs("init", "--config", "recipes/tiny-vl/init.yaml", f"output_dir={out / 'init'}",
             f"tokenizer.corpus=[{data / 'pretrain.jsonl'}]", *args.overrides)
        (out / "init_overrides.json").write_text(json.dumps(args.overrides))
    made_with = json.loads((out / "init_overrides.json").read_text()) if (out / "init_overrides.json").exists() else []
    if made_with != args.overrides:  # the runs below reuse this init
        raise SystemExit(f"{out}/init was made with overrides {made_with}, not {args.overrides}; use another --out")
    asked = yaml.safe_load((data / "recipe.yaml").read_text())["pretrain_images_per_level"]
    if asked != args.captions:  # finished data and runs are read again, so they must be of these arguments
        raise SystemExit(f"{data} holds {asked} captions per domain, not --captions {args.captions}; use another --out")
    drawn = Counter(Path(json.loads(line)["images"][0]).name.split("-")[0]
                    for line in (data / "pretrain.jsonl").read_text().splitlines())
    probes = list(range(args.probe_every, args.steps + 1, args.probe_every))
    lines = []
    for lr in args.lrs.split(","):
        run = out / f"lr-{lr}"
        if not (run / "model").exists():
            rlcs("pretrain", "--config", "recipes/tiny-vl/pretrain.yaml", f"output_dir={run}",
                 f"model.path={out / 'init/model'}", f"data.train={data / 'pretrain.jsonl'}",
                 f"data.eval={data / 'pretrain_eval.jsonl'}", f"optim.lr={lr}", "train.micro_batch_size=8",
                 f"train.max_steps={args.steps}", f"train.save_every={args.probe_every}", "train.keep_checkpoints=1000",
                 f"train.eval_every={args.steps}", f"train.log_every={LOG_EVERY}", "train.resume=never",
                 "logging.wandb=false")
        rows = read_metrics(run)
        missing = [step for step in probes[:-1] if not (run / "checkpoints" / f"step-{step}" / "model").exists()]
        last = max(r["step"] for r in rows)
        if last != args.steps or missing:
            raise SystemExit(f"{run} is not a run of --steps {args.steps} probed every {args.probe_every} steps "
                             f"(last step {last}, no checkpoint at {missing}); use another --out")
        spread = {r["step"]: r["train/image_token_spread"] for r in rows if "train/image_token_spread" in r}
        for step in probes:
            model = run / "model" if step == args.steps else run / "checkpoints" / f"step-{step}" / "model"
            use = caption_loss_own_and_swapped(model, data)
            cells = " | ".join(f"{own:.3f} / {swapped:.3f}" for own, swapped in use.values())
            lines.append(f"| {lr} | {step} | {spread.get(step, float('nan')):.3f} | {cells} |")
            print(lines[-1], flush=True)
    drawn_per_domain = ", ".join(f"{d} {drawn[d]}" for d in VISUAL_DOMAINS)
    shape = f" (`rlcs init` with {', '.join(f'`{o}`' for o in args.overrides)})" if args.overrides else ""
    extra = "".join(f" {flag}" for flag in ([] if args.section == "image_reading" else ["--section", args.section])
                    + args.overrides)
    write_section(args.section, f"""
## Does the tiny GLM-4V read its images? Level-1 caption pretraining by learning rate{shape}

Command: `python benchmarks/image_reading.py --steps {args.steps} --probe-every {args.probe_every} --lrs {args.lrs}
--captions {args.captions} --out {args.out}{extra}`. The image domains of
`recipes/tiny-vl/data.yaml` at level 1 only, {args.captions} caption documents per domain asked for and no text
({drawn_per_domain} drawn: a level-1 space can hold fewer distinct images), pretrained
with `recipes/tiny-vl/pretrain.yaml` at micro-batch 8 (one caption per row: image documents are not packed)
from one fresh `rlcs init`, once per learning rate (its warmup and cosine schedule over {args.steps} steps).
Each cell: the held-out caption loss given each caption's own image / the next caption's image of the same
domain (16 per domain); equal losses mean the decoder does not use the image. `spread` is
`train/image_token_spread` of the {LOG_EVERY} steps before the checkpoint. One run per rate. Machine: {machine()}.

| lr | step | spread | {' | '.join(VISUAL_DOMAINS)} |
|---|---|---|{'---|' * len(VISUAL_DOMAINS)}
{chr(10).join(lines)}
""")


if __name__ == "__main__":
    main()
