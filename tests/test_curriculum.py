"""The curriculum sampler: maths by hand, concentration on mid-range items, selection, expansion, state."""

from collections import Counter

import numpy as np
import pytest

from rlcs.curriculum import maths
from rlcs.curriculum.baselines import DapoSampler, UniformSampler
from rlcs.curriculum.interface import GroupOutcome
from rlcs.curriculum.rlcs import RLCSOptions, RLCSSampler


def _examples(n, domain="d", difficulty=None):
    rows = [{"id": f"{domain}{i}", "domain": domain, "prompt": str(i), "answer": "x"} for i in range(n)]
    if difficulty is not None:
        for row, value in zip(rows, difficulty):
            row["difficulty"] = value
    return rows


def _outcome(example_id, passes, g=8, domain="d"):
    return GroupOutcome(example_id, domain, [1.0] * passes + [0.0] * (g - passes), passes)


def test_prior_and_posterior_update_by_hand():
    config = RLCSOptions(prior_strength=4.0, decay=1.0)
    sampler = RLCSSampler(_examples(2, difficulty=[0.25, 0.75]), config, group_size=8, seed=0)
    a, b = sampler.posterior()
    assert a.tolist() == [1.0, 3.0] and b.tolist() == [3.0, 1.0]  # mean 0.25 / 0.75 x strength 4
    sampler.update([_outcome("d0", passes=6)])
    a, b = sampler.posterior()
    assert (a[0], b[0]) == (7.0, 5.0)  # + 6 passes, + 2 fails
    assert sampler.pass_rate_means()[0] == pytest.approx(7 / 12)


def test_partial_credit_groups_are_informative_and_selected_before_flat_ones():
    partial = GroupOutcome("d0", "d", [0.5, 0.8, 0.5, 0.6], passes=0)  # none passes, yet they differ
    flat = GroupOutcome("d1", "d", [0.5] * 4, passes=0)
    noise = GroupOutcome("d2", "d", [0.5, 0.5, 0.5, 0.50001], passes=0)  # float noise is no signal
    binary = GroupOutcome("d3", "d", [1.0, 0.0, 0.0, 0.0], passes=1)
    assert [o.informative for o in (partial, flat, noise, binary)] == [True, False, False, True]
    sampler = RLCSSampler(_examples(4), RLCSOptions(), group_size=4, seed=0)
    assert sampler.select([flat, partial, noise, binary], 2) == [3, 1]  # variances 0.1875 and 0.0169


def test_partial_credit_counts_as_a_share_of_a_pass_so_such_items_rank_as_informative():
    # a transcription-like domain: rewards differ in every group, yet no completion is perfect
    partial = [GroupOutcome(f"p{i}", "p", [0.4, 0.7, 0.5, 0.6, 0.3, 0.8, 0.5, 0.6], passes=0) for i in range(4)]
    failing = [_outcome(f"f{i}", 0, domain="f") for i in range(4)]
    examples = _examples(4, "p") + _examples(4, "f")
    by_reward = RLCSSampler(examples, RLCSOptions(decay=1.0, explore=0.0), group_size=8, seed=0)
    by_pass = RLCSSampler(examples, RLCSOptions(decay=1.0, explore=0.0, evidence="pass"), group_size=8, seed=0)
    for sampler in (by_reward, by_pass):
        sampler.update(partial + failing)
    a, b = by_reward.posterior()
    assert by_reward.passes[:4] == pytest.approx([4.4] * 4) and by_reward.fails[:4] == pytest.approx([3.6] * 4)
    assert by_pass.passes[:4].tolist() == [0.0] * 4  # counted as passes only, it looks like the all-fail items
    assert all(0.4 < mean < 0.6 for mean in (a / (a + b))[:4])
    # four picks: the partial-credit items, which teach (by passes alone they looked all-fail)
    assert sorted(e["domain"] for e in by_reward.pick(4)) == ["p"] * 4
    # binary rewards give the same posterior either way
    same = [RLCSSampler(_examples(2), RLCSOptions(evidence=rule), 8, seed=0) for rule in ("reward", "pass")]
    for sampler in same:
        sampler.update([_outcome("d0", passes=3), _outcome("d1", passes=8)])
    for mine, theirs in zip(same[0].posterior(), same[1].posterior()):
        assert np.array_equal(mine, theirs)
    assert np.array_equal(same[0].first_looks, same[1].first_looks)
    assert same[0].domain_pass_rate == same[1].domain_pass_rate


def test_a_state_saved_under_another_evidence_rule_is_refused():
    old = RLCSSampler(_examples(2), RLCSOptions(evidence="pass"), 8, seed=0)
    old.update([_outcome("d0", passes=3)])
    state = old.state_dict()
    with pytest.raises(ValueError, match="evidence=pass"):
        RLCSSampler(_examples(2), RLCSOptions(), 8, seed=0).load_state_dict(state)
    del state["evidence"]  # saved before the option existed: it counted full passes
    with pytest.raises(ValueError, match="evidence=pass"):
        RLCSSampler(_examples(2), RLCSOptions(), 8, seed=0).load_state_dict(state)
    resumed = RLCSSampler(_examples(2), RLCSOptions(evidence="pass"), 8, seed=0)
    resumed.load_state_dict(state)
    assert resumed.passes.tolist() == old.passes.tolist()


def test_the_same_item_twice_in_a_step_adds_its_evidence():
    config = RLCSOptions(prior_strength=4.0, decay=1.0)
    sampler = RLCSSampler(_examples(2, difficulty=[0.25, 0.75]), config, group_size=8, seed=0)
    sampler.update([_outcome("d0", passes=6), _outcome("d0", passes=1)])
    a, b = sampler.posterior()
    assert (a[0], b[0]) == (1.0 + 7, 3.0 + 9)  # both groups count: 7 passes and 9 fails on Beta(1, 3)
    assert sampler.first_looks.sum(axis=0)[0] == 1.0  # one item's first look, however many groups it had


def test_stale_evidence_decays_toward_the_prior():
    config = RLCSOptions(prior_strength=2.0, decay=0.5, initial_pass_rate=0.5, ema_momentum=0.9)
    sampler = RLCSSampler(_examples(2), config, group_size=4, seed=0)
    sampler.update([_outcome("d0", passes=4, g=4)])  # step 1: 4 passes on item 0
    # the domain's pass rate EMA moves to 0.9 * 0.5 + 0.1 * 1.0 = 0.55, so the prior is Beta(1.1, 0.9)
    a, b = sampler.posterior()
    assert (a[0], b[0]) == (pytest.approx(1.1 + 4), pytest.approx(0.9 + 0))
    sampler.update([_outcome("d1", passes=0, g=4)])  # step 2: item 0 unseen for one step
    a, b = sampler.posterior()
    # domain prior moved (EMA of pass rate), evidence halved: a0 + 4 * 0.5
    a0, b0 = maths.prior_params(sampler.domain_pass_rate["d"], 2.0)
    assert a[0] == pytest.approx(a0 + 2.0) and b[0] == pytest.approx(b0)


def test_informative_probability_and_tiers_by_hand():
    assert maths.informative_probability(0.5, 8) == pytest.approx(1 - 2 / 256)
    assert maths.informative_probability(0.1, 8) == pytest.approx(1 - 0.1**8 - 0.9**8)
    assert maths.informative_probability(0.0, 8) == 0.0
    tiers = maths.tier_of(np.array([0.05, 0.2, 0.5, 0.8, 0.95]), easy_above=0.8, hard_below=0.2)
    assert tiers.tolist() == [0, 0, 1, 2, 2]


def test_expansion_ratio_follows_the_ema_formula():
    sampler = RLCSSampler(_examples(100), RLCSOptions(ema_momentum=0.5, max_expansion=3.0), 8, seed=0)
    assert sampler.rollout_count(10) == 10
    sampler.update([_outcome(f"d{i}", 0) for i in range(5)] + [_outcome(f"d{i}", 4) for i in range(5, 10)])
    assert sampler.zero_variance_ema == 0.5  # first value taken as is
    assert sampler.rollout_count(10) == 20  # 10 / (1 - 0.5)
    sampler.update([_outcome(f"d{i}", 4) for i in range(10)])  # no zero-variance groups
    assert sampler.zero_variance_ema == pytest.approx(0.5 * 0.5 + 0.5 * 0.0)
    assert sampler.rollout_count(10) == 14  # ceil(10 / 0.75)
    sampler.update([_outcome(f"d{i}", 8) for i in range(10)])  # all zero-variance: EMA 0.625 -> ratio 2.67
    assert sampler.rollout_count(10) == 27
    sampler.update([_outcome(f"d{i}", 8) for i in range(10)])  # EMA 0.8125 -> ratio 5.3, capped at 3
    assert sampler.rollout_count(10) == 30


def test_balanced_selection_keeps_the_most_balanced_groups():
    outcomes = [_outcome("a", 8), _outcome("b", 4), _outcome("c", 0), _outcome("d", 3), _outcome("e", 7),
                _outcome("f", 5)]
    sampler = RLCSSampler(_examples(3), RLCSOptions(), 8, seed=0)
    assert sampler.select(outcomes, 3) == [1, 3, 5]  # 4/8, then 3/8 and 5/8 (ties keep order)
    passes = [8, 4, 0, 3, 7, 5]
    assert maths.balance_order([[1.0] * p + [0.0] * (8 - p) for p in passes]) == [1, 3, 5, 4, 0, 2]


def test_batches_concentrate_on_mid_range_items_and_every_item_keeps_a_chance():
    true_rate = np.linspace(0.0, 1.0, 41)  # item i passes with probability true_rate[i]
    examples = _examples(len(true_rate))
    sampler = RLCSSampler(examples, RLCSOptions(explore=0.1), group_size=8, seed=1)
    rng = np.random.default_rng(0)
    counts = Counter()
    for step in range(300):
        picked = sampler.pick(8)
        outcomes = []
        for example in picked:
            i = int(example["id"][1:])
            passes = int(rng.binomial(8, true_rate[i]))
            outcomes.append(_outcome(example["id"], passes))
            if step >= 100:
                counts[i] += 1
        sampler.update(outcomes)
    mid = sum(counts[i] for i in range(len(true_rate)) if 0.25 <= true_rate[i] <= 0.75)
    extreme = sum(counts[i] for i in range(len(true_rate)) if true_rate[i] <= 0.05 or true_rate[i] >= 0.95)
    total = sum(counts.values())
    mid_share_of_items = sum(0.25 <= r <= 0.75 for r in true_rate) / len(true_rate)
    assert mid / total > 1.4 * mid_share_of_items  # mid-range items are over-represented
    assert extreme / total < 0.5 * (sum((true_rate <= 0.05) | (true_rate >= 0.95)) / len(true_rate))
    assert all(counts[i] > 0 for i in range(len(true_rate)))  # exploration: no item is never seen


def test_domain_weights_follow_the_candidate_share_tilted_by_the_base_mix_by_hand():
    share = {"a": 0.75, "b": 0.25}
    even = maths.domain_weights({"a": 1.0, "b": 1.0}, share, floor=0.0, ceiling=1.0)
    tilted = maths.domain_weights({"a": 1.0, "b": 3.0}, share, floor=0.0, ceiling=1.0)
    assert even == pytest.approx({"a": 0.75, "b": 0.25})  # an even mix keeps the single ranking's shares
    assert tilted == pytest.approx({"a": 0.5, "b": 0.5})  # 0.75 x 1 : 0.25 x 3


def test_drift_step_and_mean_shift_by_hand():
    # two groups of 8 predicted at 0.5 that passed 6 and 7 times: score 13 - 8 = 5, information 4, ridge 1
    assert maths.drift_step([6, 7], [8, 8], [0.5, 0.5], ridge=1.0) == pytest.approx(5 / 5)
    assert maths.drift_step([], [], [], ridge=2.0) == 0.0  # no repeat looks: no move
    assert maths.drift_step([2, 6], [8, 8], [0.5, 0.5], ridge=2.0) == 0.0  # predictions right on average
    # Beta(2, 2) moved by log(3) on the logit scale: mean 0.5 -> 0.75, concentration 4 kept
    a, b = maths.shift_mean(np.array([2.0]), np.array([2.0]), np.log(3.0))
    assert (a[0], b[0]) == (pytest.approx(3.0), pytest.approx(1.0))
    assert maths.tempered(np.array([1.0]), np.array([3.0]), 0.25) == (pytest.approx([4.0]), pytest.approx([12.0]))


def test_drift_offset_follows_a_policy_that_outruns_its_evidence():
    examples = _examples(40, "d") + _examples(40, "e")
    sampler = RLCSSampler(examples, RLCSOptions(decay=1.0), group_size=8, seed=0)
    sampler.update([_outcome(f"d{i}", 4) for i in range(20)] + [_outcome(f"e{i}", 4, domain="e") for i in range(20)])
    for _ in range(6):  # the policy has learnt the d items: 7 of 8 at every look; e items stay at 4 of 8
        sampler.update([_outcome(f"d{i}", 7) for i in range(20)] + [_outcome(f"e{i}", 4, domain="e")
                                                                    for i in range(20)])
    drift = dict(zip(sampler.domains, sampler.drift))
    assert drift["d"] > 0.5 and abs(drift["e"]) < 0.05
    uncorrected = RLCSSampler(examples, RLCSOptions(decay=1.0, drift_correction=False), 8, seed=0)
    uncorrected.load_state_dict(sampler.state_dict())
    seen, unseen = sampler.index["d0"], sampler.index["d30"]
    # the evidence (prior Beta(8, 8) + 46 passes, 10 fails: 0.75) lags; the corrected mean is near 7/8
    assert uncorrected.pass_rate_means()[seen] == pytest.approx(54 / 72)
    assert sampler.pass_rate_means()[seen] > 0.84
    assert sampler.pass_rate_means()[unseen] == pytest.approx(uncorrected.pass_rate_means()[unseen])


def test_exploration_reaches_a_domain_the_ranking_never_picks():
    examples = _examples(30, "easy") + _examples(30, "mid")
    sampler = RLCSSampler(examples, RLCSOptions(explore=0.1, domain_floor=0.0), 8, seed=0)
    seen = Counter()
    for _ in range(60):
        picked = sampler.pick(10)
        seen.update(e["domain"] for e in picked)
        sampler.update([_outcome(e["id"], 8 if e["domain"] == "easy" else 4, domain=e["domain"]) for e in picked])
    assert sampler.last_weights["easy"] < 0.1  # the ranking has given up on the easy domain
    assert 0 < seen["easy"] < seen["mid"] / 5  # but uniform exploration still visits it


def test_beta_binomial_prior_by_hand():
    # counts 2 and 6 of 8: mean 4, variance 4 = binomial 2 x (1 + 7 rho) -> rho = 1/7 -> a + b = 6
    assert maths.beta_binomial_prior(2, 2 + 6, 4 + 36, 8, max_strength=16) == pytest.approx((3.0, 3.0))
    # all-or-nothing items (0 and 8): rho clipped to 0.999 -> a U-shaped prior with almost no mass
    a, b = maths.beta_binomial_prior(2, 8, 64, 8, max_strength=16)
    assert a == pytest.approx(b) and a + b == pytest.approx(1 / 0.999 - 1)
    # identical items (4 and 4): no excess variance -> as strong as allowed
    assert maths.beta_binomial_prior(2, 8, 32, 8, max_strength=16) == pytest.approx((8.0, 8.0))
    assert maths.beta_binomial_prior(1, 4, 16, 8, max_strength=16) is None  # one look: no variance yet


def test_first_looks_fit_the_domain_prior_of_unseen_items():
    config = RLCSOptions(prior_strength=2.0, decay=1.0)
    examples = _examples(10, "u") + _examples(10, "m")
    sampler = RLCSSampler(examples, config, group_size=8, seed=0)
    # domain u: all-or-nothing items; domain m: items that pass half the time
    sampler.update([_outcome("u0", 0, domain="u"), _outcome("u1", 8, domain="u"),
                    _outcome("m0", 3, domain="m"), _outcome("m1", 5, domain="m")])
    sampler.update([_outcome("u0", 4, domain="u")])  # a second look is evidence, not a first look
    fitted = dict(zip(sampler.domains, sampler.domain_priors()))
    assert sum(fitted["u"]) < 0.01  # U-shaped: an unseen u item is probably all pass or all fail
    assert fitted["m"] == pytest.approx((8.0, 8.0))  # variance 1 < binomial 2: capped at 2G
    a, b = sampler.posterior()
    unseen_u, unseen_m = sampler.index["u5"], sampler.index["m5"]
    assert (a[unseen_m], b[unseen_m]) == pytest.approx((8.0, 8.0))
    predicted = maths.informative_probability(sampler.rng.beta(a[[unseen_u] * 500], b[[unseen_u] * 500]), 8)
    assert predicted.mean() < 0.05  # Thompson draws for an unseen u item rarely look informative
    assert sampler.first_looks[sampler.domains.index("u")].tolist() == [2.0, 8.0, 64.0]


def test_domain_quotas_respect_floor_and_ceiling():
    weights = maths.domain_weights({"a": 1.0, "b": 1.0, "c": 1.0}, {"a": 1.0, "b": 0.0, "c": 0.0}, floor=0.1,
                                   ceiling=0.6)
    assert weights == pytest.approx({"a": 0.6, "b": 0.2, "c": 0.2})
    even_share = {"a": 1 / 3, "b": 1 / 3, "c": 1 / 3}
    weights = maths.domain_weights({"a": 8.0, "b": 1.0, "c": 1.0}, even_share, floor=0.15, ceiling=1.0)
    assert weights == pytest.approx({"a": 0.7, "b": 0.15, "c": 0.15})
    assert maths.allocate(10, {"a": 0.55, "b": 0.25, "c": 0.2}) == {"a": 6, "b": 2, "c": 2}
    with pytest.raises(ValueError, match="cannot hold"):
        maths.domain_weights({"a": 1, "b": 1}, {}, floor=0.6, ceiling=1.0)


def test_every_domain_gets_picks_even_when_it_yields_nothing():
    examples = _examples(20, "easy") + _examples(20, "mid")
    sampler = RLCSSampler(examples, RLCSOptions(domain_floor=0.2, explore=0.0), 8, seed=0)
    for _ in range(20):
        picked = sampler.pick(10)
        sampler.update([_outcome(e["id"], 8 if e["domain"] == "easy" else 4, domain=e["domain"]) for e in picked])
    domains = Counter(e["domain"] for e in sampler.pick(10))
    assert domains["easy"] >= 2 and domains["mid"] > domains["easy"]


@pytest.mark.parametrize("make", [
    lambda ex: RLCSSampler(ex, RLCSOptions(), 8, seed=3),
    lambda ex: RLCSSampler(ex, RLCSOptions(unseen_draw="stratum"), 8, seed=3),
    lambda ex: RLCSSampler([{**e, "level": int(e["id"][1:]) % 3} for e in ex],
                           RLCSOptions(unseen_draw="stratum", prior_by=["level"]), 8, seed=3),
    lambda ex: UniformSampler(ex, seed=3),
    lambda ex: DapoSampler(ex, seed=3, max_refills=2),
], ids=["rlcs", "rlcs-stratum-draw", "rlcs-level-stratum-draw", "uniform", "dapo"])
def test_restored_sampler_makes_exactly_the_same_next_picks(make):
    import json

    examples = _examples(30)
    original = make(examples)
    for step in range(5):
        picked = original.pick(6)
        original.update([_outcome(e["id"], (step + int(e["id"][1:])) % 9) for e in picked])
    state = json.loads(json.dumps(original.state_dict()))  # survives a JSON round trip
    restored = make(examples)
    restored.load_state_dict(state)
    for _ in range(3):
        ids = [e["id"] for e in original.pick(6)]
        assert [e["id"] for e in restored.pick(6)] == ids
        outcomes = [_outcome(i, 4) for i in ids]
        original.update(outcomes)
        restored.update(outcomes)
    assert original.metrics() == restored.metrics()


def test_dapo_refills_until_the_batch_is_informative_then_gives_up():
    sampler = DapoSampler(_examples(50), seed=0, max_refills=2)
    first = [_outcome("d0", 8), _outcome("d1", 4), _outcome("d2", 0), _outcome("d3", 2)]
    assert sampler.refill(first, batch=4) == 2  # two informative so far
    second = first + [_outcome("d4", 1), _outcome("d5", 8)]
    assert sampler.refill(second, batch=4) == 1
    third = second + [_outcome("d6", 0)]
    assert sampler.refill(third, batch=4) == 0  # retries spent: report a short batch
    assert sampler.metrics()["curriculum/short_batches_total"] == 1
    assert sampler.select(third, 4) == [1, 3, 4, 0]  # informative first


def test_state_from_another_dataset_is_refused():
    sampler = RLCSSampler(_examples(3), RLCSOptions(), 8, seed=0)
    other = RLCSSampler(_examples(4), RLCSOptions(), 8, seed=0)
    with pytest.raises(ValueError, match="different dataset"):
        other.load_state_dict(sampler.state_dict())


def test_extremes_list_seen_items_from_hardest_to_easiest():
    sampler = RLCSSampler(_examples(5), RLCSOptions(decay=1.0), 8, seed=0)
    sampler.update([_outcome("d0", 8), _outcome("d1", 0), _outcome("d2", 4)])
    extremes = sampler.extremes(count=2)
    assert [r["id"] for r in extremes["hardest"]] == ["d1", "d2"]
    assert [r["id"] for r in extremes["easiest"]] == ["d0", "d2"]
    assert extremes["hardest"][0]["evidence"] == 8.0  # d3, d4 were never seen: not listed


def _leveled(n_per_level, levels, domain="d"):
    return [{"id": f"{domain}{level}-{i}", "domain": domain, "level": level, "prompt": f"{level} {i}",
             "answer": "x"} for level in levels for i in range(n_per_level)]


def test_prior_by_level_fits_each_level_its_own_prior_shrunk_toward_the_domain():
    config = RLCSOptions(decay=1.0, prior_by=["level"], stratum_shrinkage=4.0)
    sampler = RLCSSampler(_leveled(10, [1, 2, 3]), config, group_size=8, seed=0)
    # level 1 items all fail, level 2 items pass half the time; level 3 is never looked at
    sampler.update([_outcome("d1-0", 0), _outcome("d1-1", 0), _outcome("d2-0", 4), _outcome("d2-1", 4)])
    domain = sampler.domain_priors()[0]
    priors = dict(zip([s[1] for s in sampler.strata], sampler.stratum_priors()))
    assert priors[3] == pytest.approx(domain)  # no first looks of its own: exactly the domain's prior
    # level 1: its two all-fail looks plus 4 looks' worth of the domain's moments (mean 2, mean square 8):
    # looks 6, pass sum 8, square sum 32 -> mean count 4/3, variance 32/6 - 16/9 = 32/9, rate 1/6
    rate = 1 / 6
    rho = (32 / 9 / (8 * rate * (1 - rate)) - 1) / 7
    strength = 1 / rho - 1
    assert priors[1] == pytest.approx((rate * strength, (1 - rate) * strength))
    a, b = sampler.posterior()
    mean = a / (a + b)
    unseen = {level: sampler.index[f"d{level}-5"] for level in (1, 2, 3)}
    assert mean[unseen[1]] < mean[unseen[3]] < mean[unseen[2]]
    # without prior_by every unseen item of the domain shares one prior
    flat = RLCSSampler(_leveled(10, [1, 2, 3]), RLCSOptions(decay=1.0), group_size=8, seed=0)
    flat.update([_outcome("d1-0", 0), _outcome("d1-1", 0), _outcome("d2-0", 4), _outcome("d2-1", 4)])
    a, b = flat.posterior()
    assert len({round(float(a[i] / (a[i] + b[i])), 9) for i in unseen.values()}) == 1


def test_prior_by_level_moves_picks_off_a_level_whose_first_looks_all_fail():
    # one domain, a large pool (nearly every pick is a first look): level 1 never passes, level 2 passes half
    examples = _leveled(400, [1, 2])
    true_rate = {1: 0.0, 2: 0.5}
    shares = {}
    for prior_by in ([], ["level"]):
        sampler = RLCSSampler(examples, RLCSOptions(prior_by=prior_by), group_size=8, seed=0)
        rng = np.random.default_rng(0)
        picked_levels = []
        for step in range(30):
            picks = sampler.pick(16)
            if step >= 10:
                picked_levels += [e["level"] for e in picks]
            outcomes = []
            for e in picks:
                passes = int(rng.binomial(8, true_rate[e["level"]]))
                outcomes.append(_outcome(e["id"], passes))
            sampler.update(outcomes)
        shares[tuple(prior_by)] = picked_levels.count(2) / len(picked_levels)
    assert shares[()] < 0.75  # one prior for the domain: only repeat looks tell the levels apart
    assert shares[("level",)] > 0.85


def test_prior_by_names_a_field_rows_lack_or_a_state_saved_without_it():
    with pytest.raises(ValueError, match="'grade', which no RL row has"):
        RLCSSampler(_leveled(2, [1]), RLCSOptions(prior_by=["grade"]), group_size=8, seed=0)
    plain = RLCSSampler(_leveled(2, [1, 2]), RLCSOptions(), group_size=8, seed=0)
    plain.update([_outcome("d1-0", 3), _outcome("d2-0", 5)])
    by_level = RLCSSampler(_leveled(2, [1, 2]), RLCSOptions(prior_by=["level"]), group_size=8, seed=0)
    with pytest.raises(ValueError, match=r"prior_by=\[\]"):
        by_level.load_state_dict(plain.state_dict())
    by_level.update([_outcome("d1-0", 3), _outcome("d2-0", 5)])
    again = RLCSSampler(_leveled(2, [1, 2]), RLCSOptions(prior_by=["level"]), group_size=8, seed=0)
    again.load_state_dict(by_level.state_dict())
    assert again.stratum_priors() == by_level.stratum_priors()
    assert "curriculum/stratum/d/1/prior_mean" in again.metrics()


def test_strata_have_a_fixed_order_and_a_state_must_match_them():
    rows = [{"id": str(k), "domain": "d", "prompt": str(k), "answer": "x", "tier": value}
            for k, value in enumerate([10, "1", None, 2, 1])]
    sampler = RLCSSampler(rows, RLCSOptions(prior_by=["tier"]), group_size=8, seed=0)
    # numbers by value (not as text: 2 before 10), then strings, then rows without the field
    assert sampler.strata == [("d", 1), ("d", 2), ("d", 10), ("d", "1"), ("d", None)]
    with pytest.raises(ValueError, match=r"row '0' has tier=\[1\]"):
        RLCSSampler([{**rows[0], "tier": [1]}], RLCSOptions(prior_by=["tier"]), group_size=8, seed=0)
    fewer = RLCSSampler(rows[:3], RLCSOptions(prior_by=["tier"]), group_size=8, seed=0)
    state = sampler.state_dict()
    state["ids"] = [e["id"] for e in fewer.examples]
    with pytest.raises(ValueError, match="other strata"):
        fewer.load_state_dict(state)


def test_a_shared_draw_per_stratum_stops_a_large_easy_level_winning_the_ranking_by_its_size():
    # a pool where one level is most of the items: 30x as many easy items as medium ones (pass 50%); of the
    # easy ones 70% always pass and 30% pass 60%, a wide prior; nearly every pick is a first look
    examples = _leveled(3000, [1]) + _leveled(100, [2])
    true_rate = {e["id"]: 0.5 if e["level"] == 2 else (1.0 if k % 10 < 7 else 0.6) for k, e in enumerate(examples)}
    medium_share, zero_variance = {}, {}
    for unseen_draw in ("item", "stratum"):
        sampler = RLCSSampler(examples, RLCSOptions(prior_by=["level"], unseen_draw=unseen_draw), 8, seed=0)
        rng = np.random.default_rng(0)
        levels, flat = [], 0
        for step in range(30):
            picks = sampler.pick(16)
            outcomes = [_outcome(e["id"], int(rng.binomial(8, true_rate[e["id"]]))) for e in picks]
            if step >= 10:
                levels += [e["level"] for e in picks]
                flat += sum(not o.informative for o in outcomes)
            sampler.update(outcomes)
        medium_share[unseen_draw] = levels.count(2) / len(levels)
        zero_variance[unseen_draw] = flat / len(levels)
    # one draw per item: the best of 3000 draws around the easy prior outrank the medium level's
    assert medium_share["stratum"] > 0.9
    assert medium_share["item"] < medium_share["stratum"] - 0.3
    assert zero_variance["stratum"] < 0.05
    assert zero_variance["item"] > 0.15


def test_a_shared_stratum_draw_leaves_offline_graded_items_their_own_and_ties_in_random_order():
    examples = _leveled(50, [1])
    examples[0]["difficulty"] = 0.5  # graded offline: a prior of its own, and its own draw
    sampler = RLCSSampler(examples, RLCSOptions(prior_by=["level"], unseen_draw="stratum", explore=0.0), 8, seed=0)
    # the level's first looks all pass, so its shared draw says an unseen item is all-pass: only the graded
    # item, drawn from its own medium prior, belongs at the top
    sampler.update([_outcome(f"d1-{k}", 8) for k in range(1, 6)])
    picks = [sampler.pick(3) for _ in range(20)]
    assert sum(pick[0]["id"] == "d1-0" for pick in picks) >= 15
    # unseen items tie, so which of them come next varies from pick to pick instead of following the data
    assert len({tuple(e["id"] for e in pick[1:]) for pick in picks}) > 10
