"""Held-out accuracy against rollouts spent, for uniform, dapo, rlcs and its variants, on the tiny model (CPU).

    pip install -e ".[bench]"
    python benchmarks/curriculum_tiny.py [--model outputs/tiny/sft/model] [--budget 2560] [--eval-every 10]
                                         [--seeds 3] [--eval-examples 200]
                                         [--samplers uniform,dapo,rlcs,rlcs-level] [--train POOL.jsonl]

--samplers picks the rows (uniform first: the others are measured against it);
rlcs-level, rlcs-pass and rlcs-noexp are rlcs with `prior_by: [level]`, `evidence: pass` and `max_expansion: 1`;
rlcs-level-stratum adds `unseen_draw: stratum` to rlcs-level.

Each sampler starts from the same SFT model with the same recipe
(recipes/tiny/rl.yaml) and stops once it has generated --budget completions;
held-out accuracy (greedy, scored by the domain verifiers; the recipe's eval
subset) is measured every --eval-every steps. Seeds change the sampler's
draws and the rollouts. Rollouts per step differ by design: rlcs expands,
dapo regenerates. --train replaces the recipe's RL pool (data.train), e.g. with
one drawn like the SFT set's level mix (`rlcs data ... 'rl_per_level={1: 1000, 2: 200, 3: 200, 4: 200}'`),
where uniform spends most of its groups on items the model already solves, or one with level 1 thirty times
the others (`'rl_per_level={1: 3000, 2: 100, 3: 100, 4: 100}'`), where half of uniform's groups carry no signal.

"Rollouts to uniform's final": the first evaluation at which a run's accuracy
reaches the mean final accuracy of the uniform runs (linear interpolation
between evaluations), as a share of the budget; a run that never reaches it
counts as not reached.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from collections import Counter
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from report import TINY_RL, check_section, launch_rl, machine, mean_sd, write_section, zero_variance_share  # noqa: E402

from rlcs.metrics import read_metrics  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
SAMPLERS = ("uniform", "dapo", "rlcs", "rlcs-level", "rlcs-pass", "rlcs-noexp", "rlcs-level-noexp",
            "rlcs-level-stratum")
# variants of the recipe's rlcs: a prior per domain and level (`prior_by: [level]`), full passes only as
# evidence (the rule before partial credit counted), no expansion, one draw per level for unseen items
SAMPLER_ARGS = {"rlcs-level": ["sampler.name=rlcs", "sampler.rlcs.prior_by=[level]"],
                "rlcs-pass": ["sampler.name=rlcs", "sampler.rlcs.evidence=pass"],
                "rlcs-noexp": ["sampler.name=rlcs", "sampler.rlcs.max_expansion=1"],
                "rlcs-level-noexp": ["sampler.name=rlcs", "sampler.rlcs.prior_by=[level]",
                                     "sampler.rlcs.max_expansion=1"],
                "rlcs-level-stratum": ["sampler.name=rlcs", "sampler.rlcs.prior_by=[level]",
                                       "sampler.rlcs.unseen_draw=stratum"]}
VARIANTS = {
    "rlcs": "`rlcs` is the recipe's sampler (one prior per domain)",
    "rlcs-level": "`rlcs-level` is rlcs with one prior per domain and level (`sampler.rlcs.prior_by=[level]`)",
    "rlcs-pass": "`rlcs-pass` counts full passes only (`sampler.rlcs.evidence=pass`, the rule before partial "
                 "credit counted)",
    "rlcs-noexp": "`rlcs-noexp` rolls out the batch and no more (`sampler.rlcs.max_expansion=1`): it ranks and "
                  "drops as rlcs does, but never pays for extra groups to replace uninformative ones",
    "rlcs-level-noexp": "`rlcs-level-noexp` is both (`prior_by=[level]`, `max_expansion=1`)",
    "rlcs-level-stratum": "`rlcs-level-stratum` is rlcs-level with one Thompson draw per level shared by its "
                          "unseen items (`sampler.rlcs.unseen_draw=stratum`), so a level's size does not buy "
                          "it the top of the ranking",
}


def run(sampler: str, seed: int, args, out: Path) -> list[tuple[int, int, float]]:
    """(step, rollouts spent, held-out accuracy) at every evaluation."""
    if (out / "model" / "config.json").exists():  # finished runs are reused, if they are this one
        ran = yaml.safe_load((out / "recipe.yaml").read_text())
        if (ran["model"]["path"], ran["train"]["max_rollouts"], ran["data"]["train"]) != (
                args.model, args.budget, args.pool):
            sys.exit(f"error: {out} holds a run from {ran['model']['path']} on {ran['data']['train']} with a budget "
                     f"of {ran['train']['max_rollouts']}, not {args.model} on {args.pool} with {args.budget}: "
                     f"give another --out")
    else:
        launch_rl([
            f"output_dir={out}",
            f"model.path={args.model}", *SAMPLER_ARGS.get(sampler, [f"sampler.name={sampler}"]), f"seed={seed}",
            f"train.max_rollouts={args.budget}",
            "train.steps=1000", f"train.eval_every={args.eval_every}", "train.eval_samples=0", "train.resume=never",
            f"train.eval_max_examples={args.eval_examples}", f"data.train={args.pool}",
            "logging.wandb=false",
        ])
    rows = read_metrics(out)
    spent = {r["step"]: r["rollout/rollouts_total"] for r in rows if "rollout/rollouts_total" in r}
    spent[0] = 0
    return [(r["step"], spent.get(r["step"], 0), r["eval/accuracy"]) for r in rows if "eval/accuracy" in r]


def pick_shares(runs: list[Path], label_of: dict) -> dict:
    """Mean over runs of each label's (domain's, level's) share of the picks."""
    labels = sorted(set(label_of.values()))
    shares = []
    for out in runs:
        lines = (out / "picks.jsonl").read_text().splitlines()
        picked = [label_of[i] for line in lines for i in json.loads(line)["ids"]]
        shares.append({label: picked.count(label) / len(picked) for label in labels})
    return {label: statistics.mean(s[label] for s in shares) for label in labels}


def per_domain(runs: list[Path], domain_of: dict[str, str]) -> tuple[dict[str, float], dict[str, float]]:
    """Mean over runs of each domain's share of the picks, and of its held-out accuracy at the last evaluation."""
    shares = pick_shares(runs, domain_of)
    accuracies = []
    for out in runs:
        last = [r for r in read_metrics(out) if "eval/accuracy" in r][-1]
        accuracies.append({d: last[f"eval/{d}/accuracy"] for d in shares if f"eval/{d}/accuracy" in last})
    return shares, {d: statistics.mean(a[d] for a in accuracies) for d in accuracies[0]}


def first_reaching(points: list[tuple[int, int, float]], target: float) -> float | None:
    """Rollouts at which the curve first reaches ``target``, interpolated between evaluations."""
    for (_, r0, a0), (_, r1, a1) in zip(points, points[1:]):
        if a1 >= target:
            return r1 if a1 == a0 or a0 >= target else r0 + (r1 - r0) * (target - a0) / (a1 - a0)
    return None


def spread(values: list[float]) -> str:
    return mean_sd(values, lambda v: f"{v:.1%}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", default="outputs/tiny/sft/model")
    parser.add_argument("--budget", type=int, default=2560, help="completions per run")
    parser.add_argument("--eval-every", type=int, default=10)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--eval-examples", type=int, default=200, help="held-out items per evaluation")
    parser.add_argument("--out", default="outputs/bench-curriculum-tiny")
    parser.add_argument("--section", default="curriculum_tiny",
                        help="docs/benchmarks.md section to write: another name keeps the main table, e.g. for "
                             "samplers compared from a model that RL has already trained")
    parser.add_argument("--train", default=None, help="RL pool (JSONL) instead of the recipe's data.train")
    parser.add_argument("--samplers", default="uniform,dapo,rlcs,rlcs-level",
                        help=f"comma-separated, uniform first; known: {', '.join(SAMPLERS)}")
    args = parser.parse_args()
    check_section(parser, args.section, "curriculum_tiny")
    recipe = yaml.safe_load(TINY_RL.read_text())
    args.pool = args.train or recipe["data"]["train"]  # the RL pool every run trains on
    if args.train and args.section == "curriculum_tiny":
        parser.error("--train needs a --section of its own: the main table is on the recipe's pool")
    if args.train and not (REPO / args.train).is_file():
        parser.error(f"--train: no file {args.train}")
    samplers = args.samplers.split(",")
    if samplers[0] != "uniform" or not set(samplers) <= set(SAMPLERS) or len(set(samplers)) < len(samplers):
        parser.error(f"--samplers must start with uniform and name each of {', '.join(SAMPLERS)} at most once")
    out = REPO / args.out
    seeds = list(range(args.seeds))
    curves = {(name, seed): run(name, seed, args, out / f"{name}-seed{seed}") for name in samplers for seed in seeds}
    group_size = recipe["rollout"]["group_size"]

    uniform_final = statistics.mean(curves[("uniform", s)][-1][2] for s in seeds)
    lines, mean_curves, step_curves = [], {}, {}
    for name in samplers:
        runs = [curves[(name, s)] for s in seeds]
        start = [c[0][2] for c in runs]
        final = [c[-1][2] for c in runs]
        reached = [first_reaching(c, uniform_final) for c in runs]
        shares = [r / args.budget for r in reached if r is not None]
        reach_text = (f"{statistics.mean(shares):.2f}× ({len(shares)}/{len(runs)} runs)" if shares
                      else f"not reached (0/{len(runs)})")
        zero = [zero_variance_share(out / f"{name}-seed{s}", group_size)[1] for s in seeds]
        per_seed = " / ".join(f"{f:.1%}" for f in final)
        gain = spread([f - s for f, s in zip(final, start)])
        lines.append(f"| {name} | {spread(start)} | {spread(final)} | {per_seed} | {gain} | {reach_text} "
                     f"| {statistics.mean(zero):.0%} |")
        length = min(len(c) for c in runs)
        mean_curves[name] = [(statistics.mean(c[i][1] for c in runs), statistics.mean(c[i][2] for c in runs),
                              min(c[i][2] for c in runs), max(c[i][2] for c in runs)) for i in range(length)]
        # accuracy by optimizer step: samplers that roll out more per step (expansion, regeneration) take fewer
        common = set.intersection(*({step for step, _, _ in c} for c in runs))
        step_curves[name] = [(step, statistics.mean(a for c in runs for k, _, a in c if k == step))
                             for step in sorted(common)]

    rows = [json.loads(line) for line in (REPO / args.pool).read_text().splitlines()]
    domain_of = {row["id"]: row["domain"] for row in rows}
    level_of = {row["id"]: row.get("level") or 0 for row in rows}  # 0: a row without a level
    domain_rows, level_rows = [], []
    for name in samplers:
        shares, accuracies = per_domain([out / f"{name}-seed{s}" for s in seeds], domain_of)
        domain_rows.append(f"| {name} | " + "; ".join(
            f"{d} {shares[d]:.0%} / {accuracies.get(d, float('nan')):.1%}" for d in shares) + " |")
        levels = pick_shares([out / f"{name}-seed{s}" for s in seeds], level_of)
        level_rows.append(f"| {name} | " + " | ".join(f"{levels[k]:.0%}" for k in levels) + " |")
    level_names = sorted(set(level_of.values()))

    uniform_start = statistics.mean(curves[("uniform", s)][0][2] for s in seeds)
    caveat = ("\nUniform ended at or below where it started, so \"rollouts to uniform's final\" measures noise, "
              "not learning: read the gain column.\n" if uniform_final <= uniform_start else "")
    plot = ""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        figure, axis = plt.subplots(figsize=(6, 4))
        for name, points in mean_curves.items():
            xs = [p[0] for p in points]
            axis.plot(xs, [p[1] for p in points], marker="o", label=f"{name} (mean of {len(seeds)})")
            axis.fill_between(xs, [p[2] for p in points], [p[3] for p in points], alpha=0.15)
        axis.axhline(uniform_final, color="grey", linestyle=":", linewidth=1)
        axis.set_xlabel("rollouts (completions) spent")
        axis.set_ylabel("held-out accuracy (greedy, verifier)")
        axis.legend()
        axis.grid(alpha=0.3)
        figure.tight_layout()
        figure.savefig(REPO / "docs" / f"{args.section}.png", dpi=110)
        plot = f"\n![accuracy against rollouts, mean and min-max over seeds]({args.section}.png)\n"
    except ImportError:
        plot = "\n(matplotlib not installed: no plot)\n"
    step_rows = "\n".join(f"| {name} | " + ", ".join(f"{k}: {a:.1%}" for k, a in points) + " |"
                          for name, points in step_curves.items())
    curve_rows = "\n".join(f"| {name} | " + ", ".join(f"{r:.0f}: {a:.1%}" for r, a, _, _ in points) + " |"
                           for name, points in mean_curves.items())
    main_section = args.section == "curriculum_tiny"
    elsewhere = ("" if main_section else f" --out {args.out} --section {args.section}") + (
        f" --train {args.train}" if args.train else "")
    start = "" if main_section else (f" (RL pool `{args.train}`)" if args.train else f" (starting from `{args.model}`)")
    pool_counts = Counter(level_of[row["id"]] for row in rows)
    pool_text = (f"the RL pool `{args.pool}` ({len(rows)} prompts; by level: "
                 + ", ".join(f"{k}: {pool_counts[k]}" for k in level_names) + ")")
    write_section(args.section, f"""
## Curriculum sampling on the tiny model: held-out accuracy against rollouts{start}

Command: `python benchmarks/curriculum_tiny.py --model {args.model} --budget {args.budget}
--eval-every {args.eval_every} --seeds {args.seeds} --eval-examples {args.eval_examples} --samplers {args.samplers}\
{elsewhere}`
(recipes/tiny/rl.yaml on {pool_text}, the same start model for each
sampler, seeds {seeds}, each run stopped at {args.budget} completions). Held-out accuracy: greedy, scored
by the domain verifiers, on the recipe's eval subset. Mean ± standard deviation over seeds.
Machine: {machine()}.

| sampler | start | at budget | per seed | gain | rollouts to uniform's final ({uniform_final:.1%}) | zero-variance |
|---|---|---|---|---|---|---|
{chr(10).join(lines)}
{caveat}
{"".join(VARIANTS[name] + "; " for name in samplers if name in VARIANTS)}per domain, mean over seeds: share
of the picks / held-out accuracy at the budget:

| sampler | domain: picks / accuracy |
|---|---|
{chr(10).join(domain_rows)}

Share of the picks by level (mean over seeds):

| sampler | {" | ".join(f"level {k}" for k in level_names)} |
|---|{"---|" * len(level_names)}
{chr(10).join(level_rows)}

Mean accuracy by mean rollouts spent (rollouts: accuracy):

| sampler | curve |
|---|---|
{curve_rows}

Mean accuracy by optimizer step (steps every seed reached; step: accuracy):

| sampler | curve |
|---|---|
{step_rows}
{plot}""")


if __name__ == "__main__":
    main()
