"""Held-out accuracy against rollouts spent, for uniform, dapo and rlcs, on the tiny model (CPU).

    pip install -e ".[bench]"   # matplotlib for the plot
    python benchmarks/curriculum_tiny.py [--model outputs/tiny/sft/model] [--budget 2560] [--eval-every 8]

Each sampler starts from the same SFT model with the same seed and recipe
(recipes/tiny/rl.yaml) and stops once it has generated --budget completions;
greedy held-out accuracy (the recipe's eval subset) is measured every
--eval-every steps. Rollouts per step differ by design: rlcs expands, dapo
regenerates.
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

REPO = Path(__file__).resolve().parents[1]
SAMPLERS = ("uniform", "dapo", "rlcs")


def zero_variance_share(out: Path, group_size: int) -> tuple[int, float]:
    """(groups rolled out, share of them whose completions all passed or all failed) over the whole run."""
    last = [r for r in read_metrics(out) if "curriculum/rollouts_total" in r][-1]
    groups = last["curriculum/rollouts_total"] // group_size
    return groups, 1 - last["curriculum/informative_total"] / groups


def run(sampler: str, args, out: Path) -> list[tuple[int, int, float]]:
    """(step, rollouts spent, held-out accuracy) at every evaluation."""
    subprocess.run([
        sys.executable, "-m", "rlcs.cli", "rl", "--config", "recipes/tiny/rl.yaml", f"output_dir={out}",
        f"model.path={args.model}", f"sampler.name={sampler}", f"train.max_rollouts={args.budget}",
        "train.steps=1000", f"train.eval_every={args.eval_every}", "logging.wandb=false",
    ], cwd=REPO, env={**os.environ, "WANDB_MODE": "disabled"}, check=True)
    rows = read_metrics(out)
    spent = {r["step"]: r["rollout/rollouts_total"] for r in rows if "rollout/rollouts_total" in r}
    spent[0] = 0
    return [(r["step"], spent.get(r["step"], 0), r["eval/accuracy"]) for r in rows if "eval/accuracy" in r]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", default="outputs/tiny/sft/model")
    parser.add_argument("--budget", type=int, default=2560, help="completions per run")
    parser.add_argument("--eval-every", type=int, default=8)
    parser.add_argument("--out", default="outputs/bench-curriculum-tiny")
    args = parser.parse_args()
    out = REPO / args.out
    curves = {name: run(name, args, out / name) for name in SAMPLERS}
    group_size = yaml.safe_load((REPO / "recipes/tiny/rl.yaml").read_text())["rollout"]["group_size"]

    lines = []
    for name, points in curves.items():
        final = points[-1]
        best = max(acc for _, _, acc in points)
        groups, zero_variance = zero_variance_share(out / name, group_size)
        lines.append(f"| {name} | {points[0][2]:.1%} | {final[2]:.1%} | {best:.1%} | {final[0]} | {final[1]} | "
                     f"{groups} | {zero_variance:.0%} |")
    plot = ""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        figure, axis = plt.subplots(figsize=(6, 4))
        for name, points in curves.items():
            axis.plot([p[1] for p in points], [p[2] for p in points], marker="o", label=name)
        axis.set_xlabel("rollouts (completions) spent")
        axis.set_ylabel("held-out accuracy (greedy)")
        axis.legend()
        axis.grid(alpha=0.3)
        figure.tight_layout()
        image = REPO / "docs" / "curriculum_tiny.png"
        figure.savefig(image, dpi=110)
        plot = "\n![accuracy against rollouts](curriculum_tiny.png)\n"
    except ImportError:
        plot = "\n(matplotlib not installed: no plot; `pip install -e \".[bench]\"`)\n"
    points_table = "\n".join(f"| {name} | " + ", ".join(f"{r}: {a:.1%}" for _, r, a in pts) + " |"
                             for name, pts in curves.items())
    write_section("curriculum_tiny", f"""
## Curriculum sampling on the tiny model: held-out accuracy against rollouts

Command: `python benchmarks/curriculum_tiny.py --model {args.model} --budget {args.budget}
--eval-every {args.eval_every}` (recipes/tiny/rl.yaml, same SFT model and seed for each sampler,
stopped at {args.budget} completions). Machine: {machine()}.

| sampler | accuracy at start | at budget | best | steps | completions | groups | zero-variance groups |
|---|---|---|---|---|---|---|---|
{chr(10).join(lines)}

Accuracy by rollouts spent (rollouts: accuracy):

| sampler | curve |
|---|---|
{points_table}
{plot}""")


if __name__ == "__main__":
    main()
