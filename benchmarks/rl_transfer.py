"""Does RL on the tiny model learn, and does what it learns carry over to unseen items?

    python benchmarks/rl_transfer.py [--model outputs/tiny/sft/model] [--items 16] [--steps 40]
                                     [--lr 2e-4] [--eval-examples 200]

Two runs of recipes/tiny/rl.yaml from the same SFT model, same learning rate,
uniform sampler, 8 prompts x G=8 per step:
- **repeated items**: the RL split cut to ``--items`` items (levels 2-3, a
  seeded draw), so each item is rolled out many times;
- **full split**: the recipe's own RL split, where an item is rarely seen twice.
Greedy accuracy, scored by the domain verifiers, is measured before and after
on the items the run trained on (for the full split: a seeded draw of
``--eval-examples`` of them) and on held-out items (the same number from
data/tiny/eval.jsonl). A gain on the trained items with none on the held-out
ones means RL learns, and learns item by item.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from report import launch_rl, machine, write_section  # noqa: E402

from rlcs.data import load_examples  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
RL_DATA, EVAL_DATA = "data/tiny/rl.jsonl", "data/tiny/eval.jsonl"


def greedy_accuracy(model: str, examples: list[dict]) -> float:
    from rlcs.config import ModelConfig
    from rlcs.evaluate import evaluate, recipe_router
    from rlcs.runtime import load_model, load_tokenizer

    recipe, router = recipe_router(REPO / "recipes/tiny/rl.yaml", model, examples, workers=0)
    config = ModelConfig(path=model)
    metrics, _ = evaluate(load_model(config), load_tokenizer(config), examples, recipe.train.eval_max_new_tokens,
                          show_progress=False, scorer=router.score)
    router.close()
    return metrics["eval/accuracy"]


def write_jsonl(path: Path, rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


def run_rl(model: str, train: str, out: Path, steps: int, lr: float) -> float:
    overrides = [f"model.path={model}", f"data.train={train}", f"output_dir={out}", f"train.steps={steps}",
                 "train.max_rollouts=null", "sampler.name=uniform", f"optim.lr={lr}", "train.eval_every=0",
                 "train.eval_max_examples=8", "train.eval_samples=0", "train.resume=never", "logging.wandb=false"]
    started = time.time()
    launch_rl(overrides)
    return time.time() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", default="outputs/tiny/sft/model")
    parser.add_argument("--items", type=int, default=16)
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--lr", type=float, default=2e-4)
    parser.add_argument("--eval-examples", type=int, default=200)
    parser.add_argument("--out", default="outputs/bench-rl-transfer")
    args = parser.parse_args()
    out = REPO / args.out
    rng = random.Random(0)
    train_all = load_examples(str(REPO / RL_DATA))
    held_out = rng.sample(load_examples(str(REPO / EVAL_DATA)), args.eval_examples)
    middle = [e for e in train_all if e.get("level") in (2, 3)]
    repeated = rng.sample(middle, args.items)
    write_jsonl(out / "repeated.jsonl", repeated)
    full_probe = rng.sample(train_all, args.eval_examples)

    start_held_out = greedy_accuracy(args.model, held_out)
    rows = []
    for name, train, probe in (("repeated items", str(out / "repeated.jsonl"), repeated),
                               ("full split", str(REPO / RL_DATA), full_probe)):
        run_dir = out / name.replace(" ", "-")
        seconds = run_rl(args.model, train, run_dir, args.steps, args.lr)
        final = str(run_dir / "model")
        before, after = greedy_accuracy(args.model, probe), greedy_accuracy(final, probe)
        held_after = greedy_accuracy(final, held_out)
        looks = args.steps * 8 / len(load_examples(train))
        rows.append(f"| {name} ({len(load_examples(train))} items, each picked about {looks:.2g} times) | "
                    f"{before:.1%} → {after:.1%} ({100 * (after - before):+.1f}) | "
                    f"{start_held_out:.1%} → {held_after:.1%} ({100 * (held_after - start_held_out):+.1f}) | "
                    f"{seconds:.0f} |")
        print(rows[-1], flush=True)

    write_section("rl_transfer", f"""
## RL on the tiny model: learning on trained items against carry-over to held-out items

Command: `python benchmarks/rl_transfer.py --model {args.model} --items {args.items} --steps {args.steps}
--lr {args.lr:g} --eval-examples {args.eval_examples}` (recipes/tiny/rl.yaml, uniform sampler, 8 prompts x
G=8 per step, {args.steps} steps, lr {args.lr:g}; greedy accuracy scored by the domain verifiers; trained
items: the run's own items, for the full split a seeded draw of {args.eval_examples}; held-out:
{args.eval_examples} items of data/tiny/eval.jsonl). Machine: {machine()}.

| RL training set | trained items, greedy | held-out, greedy | run seconds |
|---|---|---|---|
{chr(10).join(rows)}
""")


if __name__ == "__main__":
    main()
