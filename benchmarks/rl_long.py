"""A longer RL run of the tiny recipe: held-out scores against steps (the issue's "≤ 30 minutes" budget).

    python benchmarks/rl_long.py [--model outputs/tiny/sft/model] [--steps 400] [--eval-every 50]
                                 [--sampler rlcs] [--lr 5e-5] [--out DIR --section NAME key=value ...]

One run of recipes/tiny/rl.yaml from the SFT model with more steps than
./launch.sh gives it, evaluated every --eval-every steps on the recipe's
held-out subset: greedy scored by the verifiers, greedy exact match, and
pass@1 of the recipe's eval_samples at the rollout temperature. Trailing
key=value overrides change the recipe (e.g. optim.schedule=cosine); they need a
--section of their own, and are kept with the run for --skip-run.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from report import TINY_RL, check_section, launch_rl, machine, write_section, zero_variance_share  # noqa: E402

from rlcs.metrics import read_metrics  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", default="outputs/tiny/sft/model")
    parser.add_argument("--steps", type=int, default=400)
    parser.add_argument("--eval-every", type=int, default=50)
    parser.add_argument("--sampler", default="rlcs")
    parser.add_argument("--lr", type=float, default=None, help="default: the recipe's optim.lr")
    parser.add_argument("--out", default="outputs/bench-rl-long")
    parser.add_argument("--skip-run", action="store_true",
                        help="rewrite the section from the finished run in --out (its settings, not these flags)")
    parser.add_argument("--section", default="rl_long",
                        help="docs/benchmarks.md section (starting with rl_long), e.g. for another sampler's run")
    parser.add_argument("overrides", nargs="*", help="recipe overrides (key=value) on top of the run's own")
    args = parser.parse_args()
    check_section(parser, args.section, "rl_long", args.overrides)
    out = REPO / args.out
    kept_overrides = out / "bench_overrides.json"
    if args.skip_run and not ((out / "recipe.yaml").exists() and (out / "metrics.jsonl").exists()):
        parser.error(f"--skip-run: no finished run in {out} (recipe.yaml and metrics.jsonl)")
    overrides = [f"model.path={args.model}", f"train.steps={args.steps}", "train.max_rollouts=null",
                 f"train.eval_every={args.eval_every}", f"sampler.name={args.sampler}", "train.resume=never",
                 "logging.wandb=false", f"output_dir={out}"] + ([f"optim.lr={args.lr}"] if args.lr else [])
    started = time.time()
    if not args.skip_run:
        launch_rl(overrides + args.overrides)
        kept_overrides.write_text(json.dumps(args.overrides))
    ran = yaml.safe_load((out / "recipe.yaml").read_text())  # the run's own settings
    if args.skip_run:  # the section names the run's settings, not this command's flags
        args.model, args.steps = ran["model"]["path"], ran["train"]["steps"]
        args.eval_every, args.sampler = ran["train"]["eval_every"], ran["sampler"]["name"]
        recipe_lr = yaml.safe_load(TINY_RL.read_text())["optim"]["lr"]
        args.lr = None if float(ran["optim"]["lr"]) == float(recipe_lr) else float(ran["optim"]["lr"])
        args.overrides = json.loads(kept_overrides.read_text()) if kept_overrides.exists() else []
    rows = read_metrics(out)
    # a rewritten section reports the run's own clock: its last metrics row, after the final evaluation
    minutes = (max(r.get("time/elapsed_s", 0.0) for r in rows) if args.skip_run else time.time() - started) / 60
    spent = {r["step"]: r["rollout/rollouts_total"] for r in rows if "rollout/rollouts_total" in r}
    evals = [r for r in rows if "eval/accuracy" in r]
    lines = [f"| {r['step']} | {spent.get(r['step'], 0)} | {r['eval/accuracy']:.1%} | {r['eval/exact']:.1%} | "
             f"{r.get('eval/pass@1', float('nan')):.1%} |" for r in evals]
    domains = sorted({key.split("/")[1] for key in evals[0] if key.count("/") == 2 and key.endswith("/accuracy")})
    by_domain = [f"| {r['step']} | " + " | ".join(f"{r[f'eval/{d}/accuracy']:.1%}" for d in domains) + " |"
                 for r in evals]
    rewards = [r["reward/mean"] for r in rows if "reward/mean" in r]
    k = max(1, len(rewards) // 10)
    groups, zero_variance = zero_variance_share(out, ran["rollout"]["group_size"])
    clock = " by the run's own clock, process start-up left out" if args.skip_run else ""
    elsewhere = "" if args.section == "rl_long" else f" --out {args.out} --section {args.section}"
    lr_flag = f" --lr {args.lr:g}" if args.lr else ""
    extra = "".join(f" {o}" for o in args.overrides)
    title = ", ".join(([f"{args.sampler} sampler"] if elsewhere else []) + [f"`{o}`" for o in args.overrides])
    write_section(args.section, f"""
## A longer RL run of the tiny recipe{f' ({title})' if title else ''}

Command: `python benchmarks/rl_long.py --model {args.model} --steps {args.steps} --eval-every {args.eval_every}
--sampler {args.sampler}{lr_flag}{elsewhere}{extra}` ({minutes:.0f} minutes{clock}, evaluations included).
Held-out: the recipe's eval subset. Mean training reward: first {k} steps
{sum(rewards[:k]) / k:.3f}, last {k} steps {sum(rewards[-k:]) / k:.3f}. Zero-variance groups (every
completion of the group scored the same): {zero_variance:.1%} of the {groups} groups rolled out. Machine: {machine()}.

| step | completions | greedy, verifier | greedy, exact | pass@1 sampled, verifier |
|---|---|---|---|---|
{chr(10).join(lines)}

Greedy, verifier-scored, per domain:

| step | {' | '.join(domains)} |
|---|{'---|' * len(domains)}
{chr(10).join(by_domain)}
""")


if __name__ == "__main__":
    main()
