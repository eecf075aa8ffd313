"""The RL recipe's optimisation settings against their neighbours, on the tiny model (CPU).

    python benchmarks/rl_settings.py [--recipe recipes/tiny/rl.yaml] [--model outputs/tiny/sft/model]
                                     [--budget 5120] [--seeds 3] [--eval-examples 800]
                                     [--variants recipe,no-std-scaling,...]

Each variant is the RL recipe with one setting changed (see VARIANTS), run from the same SFT model
with the recipe's sampler until --budget completions, and scored on the held-out items before and after
(greedy, by the domain verifiers and by exact match). Seeds change the sampler's draws and the rollouts.
The question it answers: does a neighbouring setting learn more from the same rollouts than the recipe
does? Finished runs in --out are reused only when their resolved recipe is the one this command asks for.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from report import REPO, TINY_RL, launch_rl, machine, mean_sd, write_section  # noqa: E402

from rlcs.config import RLRecipe, load_recipe  # noqa: E402
from rlcs.metrics import read_metrics  # noqa: E402

# name -> (overrides of the RL recipe, what they change); "recipe" is described from the recipe itself
VARIANTS: dict[str, tuple[list[str], str]] = {
    "recipe": ([], ""),
    "no-std-scaling": (["rl.scale_adv_by_std=false"], "advantages not divided by the group's std (Dr. GRPO)"),
    "lr-2.5e-5": (["optim.lr=2.5e-5"], "learning rate 2.5e-5"),
    "lr-1e-4": (["optim.lr=1e-4"], "learning rate 1e-4"),
    "lr-2e-4": (["optim.lr=2e-4"], "learning rate 2e-4"),
    "two-mini-batches": (["rl.mini_batches=2"], "two optimizer steps per rollout batch (half the batch each)"),
    "uniform": (["sampler.name=uniform"], "uniform sampling instead of the recipe's sampler"),
    "freeze-vision": (["model.freeze_vision=true"], "image-text models: the vision tower (ViT) kept fixed"),
    "kl-0.04": (["rl.kl_coef=0.04"], "a k3 KL penalty to the start model, 0.04 (DeepSeekMath's GRPO; GLM: none)"),
}


def describe_recipe(recipe: Path) -> str:
    settings = yaml.safe_load(recipe.read_text())
    return (f"{os.path.relpath(recipe, REPO)} as it is (lr {float(settings['optim']['lr']):g}, sampler "
            f"{settings['sampler']['name']}, advantages {'' if settings['rl']['scale_adv_by_std'] else 'not '}scaled "
            f"by the group's std, {settings['rl']['mini_batches']} optimizer step(s) per rollout batch)")


def overrides(variant: str, seed: int, args, out: Path) -> list[str]:
    return [f"output_dir={out}", f"model.path={args.model}", f"seed={seed}", f"train.max_rollouts={args.budget}",
            "train.steps=1000", "train.eval_every=0", "train.eval_samples=0", "train.resume=never",
            f"train.eval_max_examples={args.eval_examples}", "logging.wandb=false", *VARIANTS[variant][0]]


def run(variant: str, seed: int, args, out: Path) -> tuple[list[dict], int]:
    """The run's evaluations (the first before step 1, the last at the budget) and its optimizer steps."""
    wanted = overrides(variant, seed, args, out)
    expected = load_recipe(args.recipe, RLRecipe, wanted).model_dump(mode="json", by_alias=True)
    if (out / "model" / "config.json").exists():
        found = yaml.safe_load((out / "recipe.yaml").read_text())
        if {k: v for k, v in found.items() if k != "output_dir"} != \
                {k: v for k, v in expected.items() if k != "output_dir"}:
            raise SystemExit(f"{out} holds a run of another recipe; remove it or pass another --out")
    else:
        launch_rl(wanted, args.recipe)
    rows = read_metrics(out)
    # an RL step is one rollout batch, trained in ppo_epochs x mini_batches optimizer steps
    steps = max(r["step"] for r in rows) * expected["rl"]["ppo_epochs"] * expected["rl"]["mini_batches"]
    return [r for r in rows if "eval/accuracy" in r], steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--recipe", type=Path, default=TINY_RL, help="the RL recipe whose settings are varied")
    parser.add_argument("--model", default="outputs/tiny/sft/model")
    parser.add_argument("--budget", type=int, default=5120, help="completions per run")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--eval-examples", type=int, default=800, help="held-out items scored before and after")
    parser.add_argument("--out", default="outputs/bench-rl-settings")
    parser.add_argument("--variants", default=",".join(VARIANTS), help=f"comma-separated of {', '.join(VARIANTS)}")
    args = parser.parse_args()
    variants = args.variants.split(",")
    if not set(variants) <= set(VARIANTS) or len(set(variants)) < len(variants):
        parser.error(f"--variants must name each of {', '.join(VARIANTS)} at most once")
    args.recipe = args.recipe.resolve()
    out = REPO / args.out
    seeds = list(range(args.seeds))
    runs = {(v, s): run(v, s, args, out / f"{v}-seed{s}") for v in variants for s in seeds}

    def points(value: float) -> str:
        return f"{100 * value:+.1f}"

    domains = sorted({key.split("/")[1] for e, _ in runs.values() for key in e[0]
                      if key.count("/") == 2 and key.endswith("/accuracy")})
    lines, domain_lines = [], []
    for variant in variants:
        evaluations = [runs[(variant, s)][0] for s in seeds]
        start = [e[0]["eval/accuracy"] for e in evaluations]
        final = [e[-1]["eval/accuracy"] for e in evaluations]
        exact_gain = [e[-1]["eval/exact"] - e[0]["eval/exact"] for e in evaluations]
        updates = statistics.mean(runs[(variant, s)][1] for s in seeds)
        lines.append(f"| {variant} | {mean_sd(start, lambda x: f'{x:.1%}')} | {mean_sd(final, lambda x: f'{x:.1%}')} "
                     f"| {' / '.join(f'{f:.1%}' for f in final)} "
                     f"| {mean_sd([f - s for f, s in zip(final, start)], points)} "
                     f"| {mean_sd(exact_gain, points)} | {updates:.0f} |")
        cells = [statistics.mean(e[-1][f"eval/{d}/accuracy"] - e[0][f"eval/{d}/accuracy"] for e in evaluations)
                 for d in domains]
        domain_lines.append(f"| {variant} | " + " | ".join(points(c) for c in cells) + " |")
    describe = {v: VARIANTS[v][1] or describe_recipe(args.recipe) for v in variants}
    notes = "\n".join(f"- `{v}`: {describe[v]}" + (f" (`{' '.join(VARIANTS[v][0])}`)" if VARIANTS[v][0] else "")
                      for v in variants)
    recipe = Path(os.path.relpath(args.recipe, REPO))
    folder = recipe.parent.name
    command = "python benchmarks/rl_settings.py" + (f" --recipe {recipe}" if args.recipe != TINY_RL else "")
    write_section("rl_settings" if args.recipe == TINY_RL else f"rl_settings_{folder}", f"""
## RL settings of the {folder} recipe against their neighbours

Command: `{command} --model {args.model} --budget {args.budget} --seeds {args.seeds}
--eval-examples {args.eval_examples} --variants {args.variants}` (each variant is {recipe} with
one setting changed, the same SFT model, seeds {seeds}, each run stopped at
{args.budget} completions). Held-out: greedy, {args.eval_examples} items of the recipe's eval file (a fixed
draw, the same for every run), before step 1 and at the budget; gain in points, mean ± standard deviation over seeds.
Machine: {machine()}.

{notes}

| variant | start | at budget | per seed | gain, verifier | gain, exact | optimizer steps |
|---|---|---|---|---|---|---|
{chr(10).join(lines)}

Gain per domain (points, verifier-scored, mean over seeds):

| variant | {" | ".join(domains)} |
|---|{"---|" * len(domains)}
{chr(10).join(domain_lines)}
""")


if __name__ == "__main__":
    main()
