"""Rollouts to a target skill for uniform, dapo and rlcs, on a simulated learner (no model).

    python benchmarks/curriculum_sim.py [--seeds 24]

Items have a difficulty theta; a domain has a skill s and each item a learnt
bonus b; an item passes a rollout with probability sigmoid(s + b - theta). Each
step the sampler under test is driven exactly as the RL loop drives it
(rollout_count, pick, refill rounds, update, select); the learner then learns
only from the groups the optimizer receives, in proportion to their reward
variance 4q(1 - q) for a group pass share q (zero for all-pass or all-fail
groups): a little for the whole domain (transfer) and more for the item itself.
The population follows the paper's observation that most prompts are far too
easy or far too hard for the current policy. "Skill" is the mean pass
probability over all items; we count rollouts (completions) until it reaches
the target. An `oracle` row, which ranks items by their true informative
probability, shows what perfect knowledge of every pass rate would buy; it is a
reference, not a sampler anyone can run.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from report import write_section  # noqa: E402

from rlcs.config import SamplerConfig  # noqa: E402
from rlcs.curriculum.sampler import RLCSSampler  # noqa: E402
from rlcs.sampling import DapoSampler, GroupOutcome, UniformSampler  # noqa: E402

G, BATCH, TARGET, MAX_STEPS = 8, 32, 0.65, 4000
DOMAIN_RATE, ITEM_RATE = 0.003, 0.1  # skill gained per unit of group variance: domain-wide, item-specific
# domain -> (items, mean difficulty, spread): mostly too easy, mostly too hard, wide, and a narrow band
DOMAINS = {"easy": (400, -4.0, 1.0), "hard": (400, 4.0, 1.0), "wide": (400, 0.0, 3.0), "narrow": (400, 1.0, 0.3)}


def population(seed: int):
    rng = np.random.default_rng(seed)
    examples, theta, domain_of = [], [], []
    for d, (name, (count, mean, spread)) in enumerate(DOMAINS.items()):
        for i in range(count):
            examples.append({"id": f"{name}-{i}", "domain": name})
            theta.append(rng.normal(mean, spread))
            domain_of.append(d)
    return examples, np.array(theta), np.array(domain_of)


def offline_grades(examples, theta, seed: int, k: int = 8) -> list[dict]:
    """The offline half of RLCS: each item's pass rate over k samples of the starting policy
    (what `rlcs grade` computes with a prior model), attached as its ``difficulty`` prior."""
    rng = np.random.default_rng(seed + 2000)
    start = 1 / (1 + np.exp(theta))  # skill 0, bonus 0
    return [{**e, "difficulty": float(rng.binomial(k, p) / k)} for e, p in zip(examples, start)]


class OracleSampler(UniformSampler):
    """Picks the items whose true pass rate p maximises 1 - p^G - (1 - p)^G (needs the simulator's state)."""

    def __init__(self, examples, seed: int, true_pass_rates):
        super().__init__(examples, seed)
        self.true_pass_rates = true_pass_rates

    def pick(self, count: int) -> list[dict]:
        p = self.true_pass_rates()
        order = np.argsort(-(1 - p**G - (1 - p) ** G), kind="stable")
        return [self.examples[i] for i in order[:count]]

    def select(self, outcomes, batch: int) -> list[int]:
        return sorted(range(len(outcomes)), key=lambda i: abs(outcomes[i].passes - G / 2))[:batch]


# ablations: one knob of the rlcs defaults changed at a time -> (config overrides, offline priors)
ABLATIONS = {
    "rlcs, plain Thompson draws (thompson_temperature 1)": ({"thompson_temperature": 1.0}, False),
    "rlcs, no drift correction": ({"drift_correction": False}, False),
    "rlcs, domain_floor 0.05": ({"domain_floor": 0.05}, False),
    "rlcs, explore 0.05": ({"explore": 0.05}, False),
    "rlcs+offline, prior_strength 8 (the grade counted as its 8 rollouts)": ({"prior_strength": 8.0}, True),
}


def make_sampler(name: str, examples, seed: int):
    if name == "uniform":
        return UniformSampler(examples, seed)
    if name == "dapo":
        return DapoSampler(examples, seed, max_refills=3)
    overrides = ABLATIONS[name][0] if name in ABLATIONS else {}
    return RLCSSampler(examples, SamplerConfig(name="rlcs", **overrides), G, seed)


def simulate(name: str, seed: int) -> dict:
    examples, theta, domain_of = population(seed)
    if name == "rlcs+offline" or ABLATIONS.get(name, ({}, False))[1]:
        examples = offline_grades(examples, theta, seed)
    index = {e["id"]: i for i, e in enumerate(examples)}
    skill = np.zeros(len(DOMAINS))
    bonus = np.zeros(len(examples))
    rng = np.random.default_rng(seed + 1000)
    rollouts, groups_rolled, zero_variance = 0, 0, 0
    first_looks = first_look_zero = 0
    looked = np.zeros(len(examples), dtype=bool)

    def pass_rates() -> np.ndarray:
        return 1 / (1 + np.exp(-(skill[domain_of] + bonus - theta)))

    def mean_pass() -> float:
        return float(np.mean(pass_rates()))

    sampler = OracleSampler(examples, seed, pass_rates) if name == "oracle" else make_sampler(name, examples, seed)

    steps = 0
    while steps < MAX_STEPS and mean_pass() < TARGET:
        steps += 1
        outcomes: list[GroupOutcome] = []
        count = sampler.rollout_count(BATCH)
        while count:
            for example in sampler.pick(count):
                i = index[example["id"]]
                p = 1 / (1 + np.exp(-(skill[domain_of[i]] + bonus[i] - theta[i])))
                passes = int(rng.binomial(G, p))
                if not looked[i]:
                    looked[i] = True
                    first_looks += 1
                    first_look_zero += passes in (0, G)
                outcomes.append(GroupOutcome(example["id"], example["domain"],
                                             [1.0] * passes + [0.0] * (G - passes), passes))
            count = sampler.refill(outcomes, BATCH)
        sampler.update(outcomes)
        rollouts += G * len(outcomes)
        groups_rolled += len(outcomes)
        zero_variance += sum(not o.informative for o in outcomes)
        for k in sampler.select(outcomes, BATCH):
            o = outcomes[k]
            share = o.passes / G
            i = index[o.example_id]
            skill[domain_of[i]] += DOMAIN_RATE * 4 * share * (1 - share)
            bonus[i] += ITEM_RATE * 4 * share * (1 - share)
    return {"rollouts": rollouts if mean_pass() >= TARGET else None, "steps": steps,
            "zero_variance": zero_variance / groups_rolled, "first_looks": first_looks / groups_rolled,
            "first_look_zero": first_look_zero / groups_rolled}


def summarise(runs: list[dict], uniform_mean: float | None) -> tuple[float | None, str]:
    reached = [r["rollouts"] for r in runs if r["rollouts"] is not None]
    mean = statistics.mean(reached) if len(reached) == len(runs) else None
    if mean is None:
        rollouts = f"not reached in {MAX_STEPS} steps ({len(reached)}/{len(runs)} seeds)"
    else:
        spread = statistics.stdev(reached) / len(reached) ** 0.5 if len(reached) > 1 else 0.0
        rollouts = f"{mean:,.0f} ± {spread:,.0f}"
    ratio = f"{mean / uniform_mean:.2f}x" if mean and uniform_mean else "—"
    row = (f"{rollouts} | {ratio} | {statistics.mean(r['steps'] for r in runs):.0f} | "
           f"{statistics.mean(r['zero_variance'] for r in runs):.1%} | "
           f"{statistics.mean(r['first_looks'] for r in runs):.1%} | "
           f"{statistics.mean(r['first_look_zero'] for r in runs):.1%}")
    return mean, row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seeds", type=int, default=24)
    args = parser.parse_args()
    names = ("uniform", "dapo", "rlcs", "rlcs+offline", "oracle")
    results = {name: [simulate(name, seed) for seed in range(args.seeds)] for name in (*names, *ABLATIONS)}
    uniform_mean, _ = summarise(results["uniform"], None)
    rows = {name: summarise(runs, uniform_mean)[1] for name, runs in results.items()}
    for name in results:
        print(f"{name}: {rows[name]}")
    header = ("| sampler | rollouts to target | vs uniform | steps | zero-variance groups | first looks "
              "| zero-variance first looks |\n|---|---|---|---|---|---|---|")
    grading = 8 * sum(count for count, _, _ in DOMAINS.values())
    spec = "; ".join(f"{name}: {count} items, difficulty N({mean}, {spread})"
                     for name, (count, mean, spread) in DOMAINS.items())
    write_section("curriculum_sim", f"""
## Curriculum sampling in simulation: rollouts to a target skill

Command: `python benchmarks/curriculum_sim.py --seeds {args.seeds}` (no model; the real sampler classes,
driven as the RL loop drives them). Population: {spec}. A rollout passes with probability
sigmoid(skill_domain + bonus_item - difficulty); both start at 0 and grow only from the groups the
optimizer receives, by {DOMAIN_RATE} (domain) and {ITEM_RATE} (item) x 4q(1-q) per group.
Batch {BATCH} groups of G={G}; target: mean pass
probability over all items >= {TARGET}. Means over {args.seeds} seeds (rollouts ± their standard error);
zero-variance share is over all groups rolled out, including those the expansion rolls out and the
balanced selection drops; "first looks" is the share of groups that were an item's first rollout, and
the last column the share of all groups that were first looks with zero variance (the cost of finding out).

{header}
{chr(10).join(f"| {name} | {rows[name]} |" for name in names)}

`rlcs+offline` starts from offline difficulty priors (each item's pass rate over 8 samples of the
starting policy, as `rlcs grade` computes); those {grading:,} grading rollouts are not in its count, as
the paper grades offline with prior models. `oracle` is not a sampler: it reads the simulator's true
pass rates, and bounds what any estimate could reach.

Ablations, one setting changed from the rlcs defaults at a time, same seeds:

{header}
{chr(10).join(f"| {name} | {rows[name]} |" for name in ABLATIONS)}
""")


if __name__ == "__main__":
    main()
