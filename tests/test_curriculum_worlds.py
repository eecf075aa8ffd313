"""The simulated worlds (benchmarks/worlds/*.yaml) and the sampler rules they motivated: the informative
floor that keeps a hard domain in the picks, and drift offsets that need evidence and revert."""

from collections import Counter

import numpy as np
import pytest

from rlcs.curriculum import maths
from rlcs.curriculum.interface import GroupOutcome
from rlcs.curriculum.rlcs import RLCSOptions, RLCSSampler

from .conftest import load_benchmark

sim = load_benchmark("curriculum_sim")


def _outcome(example_id, passes, g=8, domain="d"):
    return GroupOutcome(example_id, domain, [1.0] * passes + [0.0] * (g - passes), passes)


# -- worlds -------------------------------------------------------------------

def test_every_world_loads_and_the_suite_covers_each_kind_of_world():
    worlds = {w.name: w for w in sim.all_worlds()}
    assert len(worlds) >= 6 and "base" in worlds
    splits = Counter(w.split for w in worlds.values())
    assert splits["tuning"] == splits["held-out"]  # half chooses defaults, half is held out
    specs = [d for w in worlds.values() for d in w.domains]
    assert any(w.item_rate == 0 for w in worlds.values())  # domain skill only
    assert any(w.item_rate >= 0.3 for w in worlds.values())  # strong per-item learning
    assert any(len(w.domains) >= 6 and max(d.items for d in w.domains) >= 10 * min(d.items for d in w.domains)
               for w in worlds.values())  # very different sizes
    assert any(d.learnable_after for d in specs) and any(d.forget > 0 for d in specs)
    assert any(d.partial_credit for d in specs) and any(d.unsolvable > 0 and d.mislabelled > 0 for d in specs)
    base = worlds["base"]  # the original simulation, unchanged
    assert [(d.name, d.items, d.difficulty, d.spread) for d in base.domains] == [
        ("easy", 400, -4.0, 1.0), ("hard", 400, 4.0, 1.0), ("wide", 400, 0.0, 3.0), ("narrow", 400, 1.0, 0.3)]


GOOD = """split: tuning
description: two domains
uniform_steps: 5
domains:
  - {name: a, items: 20, difficulty: 0.0, spread: 1.0}
  - {name: b, items: 10, difficulty: 2.0, spread: 1.0}
"""


@pytest.mark.parametrize("text, key", [
    (GOOD.replace("uniform_steps: 5", "uniform_step: 5"), "uniform_step"),  # a typo is not ignored
    (GOOD.replace("uniform_steps: 5\n", ""), "uniform_steps"),
    (GOOD.replace("split: tuning", "split: train"), "split"),
    (GOOD.replace("items: 20", "items: -3"), "domains[0].items"),
    (GOOD.replace("spread: 1.0}\n  - {name: b", "spread: wide}\n  - {name: b"), "domains[0].spread"),
    (GOOD.replace("{name: b,", "{name: b, learnable_after: c,"), "domains[1].learnable_after"),
    (GOOD.replace("{name: b,", "{name: b, forget: 1.5,"), "domains[1].forget"),
    (GOOD.replace("{name: b,", "{name: b, colour: red,"), "domains[1].colour"),
    (GOOD.replace("name: b", "name: a"), "domains"),
    ("- just a list\n", None),
])
def test_a_bad_world_names_its_file_and_key(tmp_path, text, key):
    path = tmp_path / "broken.yaml"
    path.write_text(text)
    with pytest.raises(ValueError) as error:
        sim.load_world(path)
    assert str(path) in str(error.value)
    if key is not None:
        assert f"key '{key}'" in str(error.value)


def test_offline_grading_is_charged_to_the_run_and_primes_each_item(tmp_path):
    path = tmp_path / "graded.yaml"
    path.write_text(GOOD.replace("spread: 1.0}\n", "spread: 1.0, partial_credit: 4}\n", 1))  # a: partial credit
    world = sim.load_world(path)
    learner = sim.Learner(world, seed=0)
    before = learner.rng.bit_generator.state
    sampler = sim.make_sampler("rlcs-graded:4", learner, seed=0)
    assert learner.rng.bit_generator.state == before  # grading draws from its own stream
    # as `rlcs grade -k 4` writes under evidence: reward: the mean clipped reward, so partial credit's
    # sub-steps count (a: 4 completions x 4 sub-steps, in sixteenths; b: passes, in quarters)
    expected = learner.graded(4, np.random.default_rng(100_003))
    difficulty = np.array([e["difficulty"] for e in sampler.examples])
    assert difficulty.tolist() == expected.tolist()
    assert set((difficulty[:20] * 16).round(9)) <= set(range(17))
    assert set((difficulty[20:] * 4).round(9)) <= set(range(5))
    assert (difficulty[:20] * 4 % 1 != 0).any()  # some partial-credit grade is not a share of 4 passes
    assert sampler.offline.tolist() == difficulty.tolist()
    # 30 items x 4 completions are spent before step 1, and training adds to them
    assert sim.simulate(world, "rlcs", seed=0, target=0.0)["rollouts"] == 0
    assert sim.simulate(world, "rlcs-graded:4", seed=0, target=0.0)["rollouts"] == 120
    short = sim.simulate(world, "rlcs-graded:4", seed=0, target=1.0, max_rollouts=100)
    assert short["rollouts"] == 120 and not short["reached"]  # out of budget before the first step
    trained = sim.simulate(world, "rlcs-graded:4", seed=0, target=1.0, max_rollouts=400)
    assert trained["rollouts"] >= 400 and (trained["rollouts"] - 120) % world.group_size == 0
    assert trained["no_gradient"] >= 120 / trained["rollouts"]
    for bad in ("rlcs-graded:0", "rlcs-graded:x", "rlcs-graded:-2"):
        with pytest.raises(ValueError, match="whole number"):
            sim.make_sampler(bad, learner, seed=0)


def test_the_learner_keeps_each_world_rule(tmp_path):
    path = tmp_path / "rules.yaml"
    path.write_text("""split: held-out
description: one of each rule
uniform_steps: 3
domain_rate: 0.5
item_rate: 0.0
domains:
  - {name: base, items: 30, difficulty: 0.0, spread: 0.5}
  - {name: locked, items: 30, difficulty: 0.0, spread: 0.5, learnable_after: base, unlock_skill: 100.0}
  - {name: fading, items: 30, difficulty: 0.0, spread: 0.5, forget: 0.5}
  - {name: steps, items: 30, difficulty: 0.0, spread: 0.5, partial_credit: 4}
  - {name: broken, items: 30, difficulty: -5.0, spread: 0.1, unsolvable: 0.5, mislabelled: 0.5}
""")
    learner = sim.Learner(sim.load_world(path), seed=0)
    groups = [learner.rollout(e) for e in learner.examples]
    by_domain = {d.name: [o for o in groups if o.domain == d.name] for d in learner.world.domains}
    assert all(r in (0.0, 0.25, 0.5, 0.75, 1.0) for o in by_domain["steps"] for r in o.rewards)
    assert any(0 < r < 1 for o in by_domain["steps"] for r in o.rewards)  # partial credit happens
    broken = [o for o in by_domain["broken"] if learner.kind[learner.index[o.example_id]] == 1]
    assert broken and all(o.passes == 0 for o in broken)  # unsolvable items never pass
    # mislabelled items of an easy domain (right ~99%) pass only when wrong: almost never
    assert np.mean([o.passes for o in by_domain["broken"]]) < 0.5
    mixed = [GroupOutcome(e["id"], e["domain"], [1.0, 0.0] * 4, 4) for e in learner.examples]
    learner.learn(mixed)
    skill = dict(zip([d.name for d in learner.world.domains], learner.skill))
    assert skill["base"] > 0 and skill["locked"] == 0.0  # locked until base reaches 100
    assert skill["broken"] == 0.0  # nothing right to learn from broken items
    learner.learn([o for o in mixed if o.domain == "base"])
    fading = learner.skill[[d.name for d in learner.world.domains].index("fading")]
    assert fading == pytest.approx(skill["fading"] * 0.5)  # not trained this step: half forgotten


def test_simulate_stops_at_uniforms_skill_and_counts_rollouts(tmp_path):
    path = tmp_path / "small.yaml"
    path.write_text(GOOD)
    world = sim.load_world(path)
    uniform = sim.simulate(world, "uniform", seed=0)
    assert uniform["rollouts"] == 5 * 32 * 8 and uniform["reached"]
    rlcs = sim.simulate(world, "rlcs", seed=0, target=uniform["skill"], max_rollouts=3 * uniform["rollouts"])
    assert rlcs["skill"] >= uniform["skill"] or rlcs["rollouts"] >= 3 * uniform["rollouts"]
    assert rlcs["picks"].sum() == pytest.approx(1.0)


def test_the_seen_item_oracle_knows_only_items_it_has_rolled_out(tmp_path):
    path = tmp_path / "two.yaml"
    path.write_text("""split: held-out
description: a medium domain and an all-or-nothing one
uniform_steps: 1
domains:
  - {name: medium, items: 20, difficulty: 1.5, spread: 0.3}
  - {name: split, items: 40, difficulty: 0.0, spread: 8.0}
""")
    learner = sim.Learner(sim.load_world(path), seed=0)
    sampler = sim.make_sampler("seen-oracle", learner, seed=0)
    split = np.flatnonzero(learner.domain_of == 1)
    best_split = split[np.argmax(learner.informative()[split])]
    # unseen, a split item is worth its domain's mean (low: most are far too easy or too hard), so the
    # first picks are all medium items, the split domain's most informative item among them or not
    first = [learner.index[e["id"]] for e in sampler.pick(20)]
    assert set(learner.domain_of[first]) == {0} and best_split not in first
    assert sampler.seen[first].all() and sampler.seen.sum() == 20  # what it rolled out, it now knows
    # once rolled out, an item is known: the best split item, seen, outranks the medium items' lower ones
    sampler.seen[best_split] = True
    assert learner.informative()[best_split] > np.sort(learner.informative()[learner.domain_of == 0])[0]
    assert best_split in [learner.index[e["id"]] for e in sampler.pick(20)]


# -- the informative floor ------------------------------------------------------

def test_expected_informative_by_hand():
    # Beta(1, 1): E[p^2] = 1/3, so with G = 2, 1 - 1/3 - 1/3 = 1/3
    assert maths.expected_informative(np.array([1.0]), np.array([1.0]), 2)[0] == pytest.approx(1 / 3)
    # a tight Beta at 0.5 approaches the point value 1 - 2 / 2**8
    tight = maths.expected_informative(np.array([1e6]), np.array([1e6]), 8)[0]
    assert tight == pytest.approx(1 - 2 / 256, abs=1e-4)
    floors = maths.informative_floors({"a": 3.0, "b": 1.0, "c": 0.0}, {"a": 1.0, "b": 1.0, "c": 1.0}, 0.5, 0.1)
    assert floors == pytest.approx({"a": 0.375, "b": 0.125, "c": 0.1})  # 0.5 x the shares, at least 0.1
    floors = maths.informative_floors({"a": 3.0, "b": 1.0, "c": 0.0}, {"a": 1.0, "b": 1.0, "c": 1.0}, 0.5, 0.2)
    assert floors == pytest.approx({"a": 0.3, "b": 0.2, "c": 0.2})  # scale cut to what 3 x 0.2 leaves: 0.4
    assert maths.domain_weights({"a": 1.0, "b": 1.0}, {"a": 1.0}, {"a": 0.0, "b": 0.3}, 1.0) == pytest.approx(
        {"a": 0.7, "b": 0.3})


def _hard_domain_run(config: RLCSOptions, steps: int = 30):
    """100 known items in `known` that pass half the time; 60 items in `hard` that pass 15% of the time (a
    group of 8 is informative 73% of the time, against 99% for a known item). Returns the sampler and the
    picks of `hard` per step."""
    examples = ([{"id": f"k{i}", "domain": "known"} for i in range(100)]
                + [{"id": f"h{i}", "domain": "hard"} for i in range(60)])
    rate = {e["id"]: 0.5 if e["domain"] == "known" else 0.15 for e in examples}
    sampler = RLCSSampler(examples, config, group_size=8, seed=0)
    rng = np.random.default_rng(0)
    sampler.update([_outcome(f"k{i}", 4, domain="known") for i in range(100)]
                   + [_outcome(f"h{i}", int(rng.binomial(8, 0.15)), domain="hard") for i in range(10)])
    hard_picks = []
    for _ in range(steps):
        picked = sampler.pick(20)
        hard_picks.append(sum(e["domain"] == "hard" for e in picked))
        sampler.update([_outcome(e["id"], int(rng.binomial(8, rate[e["id"]])), domain=e["domain"])
                        for e in picked])
    return sampler, hard_picks


def test_a_hard_domain_with_informative_items_keeps_its_floor_share():
    sampler, hard_picks = _hard_domain_run(RLCSOptions(explore=0.0))
    floor = sampler.last_floors["hard"]
    assert 0.05 < floor < 0.35  # its items are still informative: 0.35 x about a quarter of the mass
    assert all(n >= int(np.floor(floor * 20)) >= 1 for n in hard_picks)  # never below its floor
    # the tempered ranking alone puts every known item first and starves the hard domain
    _, unfloored_picks = _hard_domain_run(RLCSOptions(explore=0.0, informative_floor=0.0))
    assert sum(unfloored_picks) < sum(hard_picks) / 2


def test_a_domain_with_nothing_left_to_teach_gets_no_floor():
    examples = [{"id": f"e{i}", "domain": "easy"} for i in range(20)] + [{"id": f"m{i}", "domain": "mid"}
                                                                         for i in range(20)]
    sampler = RLCSSampler(examples, RLCSOptions(explore=0.0, decay=1.0), 8, seed=0)
    for _ in range(3):
        sampler.update([_outcome(f"e{i}", 8, domain="easy") for i in range(20)]
                       + [_outcome(f"m{i}", 4, domain="mid") for i in range(20)])
    sampler.pick(10)
    assert sampler.last_floors["easy"] < 0.01 < sampler.last_floors["mid"]


# -- drift rules ------------------------------------------------------------------

def _seen_sampler(config: RLCSOptions) -> RLCSSampler:
    examples = [{"id": f"d{i}", "domain": "d"} for i in range(40)] + [{"id": f"e{i}", "domain": "e"}
                                                                     for i in range(40)]
    sampler = RLCSSampler(examples, config, group_size=8, seed=0)
    sampler.update([_outcome(f"d{i}", 4) for i in range(40)] + [_outcome(f"e{i}", 4, domain="e") for i in range(40)])
    return sampler


def test_a_handful_of_repeat_looks_moves_the_offset_little():
    lucky = [_outcome("d0", 8), _outcome("d1", 8)]  # two all-pass repeat looks at items predicted 0.5
    sampler = _seen_sampler(RLCSOptions(decay=1.0))
    sampler.update(lucky)
    previous = _seen_sampler(RLCSOptions(decay=1.0, drift_ridge=1.0, drift_decay=1.0))
    previous.update(lucky)
    assert abs(sampler.drift[0]) < 0.15 < 0.5 < previous.drift[0]


def test_drift_offsets_revert_when_the_pass_rate_does_not_change():
    sampler = _seen_sampler(RLCSOptions(decay=1.0))
    sampler.drift[:] = [1.0, -1.0]  # offsets left by an earlier burst of repeat looks
    rng = np.random.default_rng(0)
    for _ in range(60):  # the pass rate stays at 0.5; a few repeat looks per step, in domain e only
        sampler.update([_outcome(f"e{i}", int(rng.binomial(8, 0.5)), domain="e") for i in range(3)])
    assert abs(sampler.drift[0]) < 0.1 and abs(sampler.drift[1]) < 0.15
    stuck = _seen_sampler(RLCSOptions(decay=1.0, drift_ridge=1.0, drift_decay=1.0))
    stuck.drift[:] = [1.0, -1.0]
    for _ in range(60):
        stuck.update([_outcome(f"e{i}", 4, domain="e") for i in range(3)])
    assert stuck.drift[0] == 1.0  # the previous rule: no repeat looks in d, so its offset never reverts


def test_constant_pass_rates_leave_offsets_near_zero():
    sampler = _seen_sampler(RLCSOptions(decay=1.0))
    rng = np.random.default_rng(1)
    offsets = []
    for _ in range(80):  # noisy repeat looks at a pass rate that never changes
        sampler.update([_outcome(f"d{i}", int(rng.binomial(8, 0.5))) for i in rng.choice(40, 5, replace=False)])
        offsets.append(abs(sampler.drift[0]))
    assert max(offsets) < 0.2
