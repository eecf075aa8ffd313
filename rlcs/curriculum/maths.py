"""The curriculum's arithmetic, as pure functions on numbers and numpy arrays.

Pass-rate posterior: an example's pass rate p has a prior Beta(a0, b0): its
domain's empirical prior (a beta-binomial fitted to the outcomes of first looks
at the domain's items, so it carries the spread of pass rates across the domain
as well as their mean), plus ``strength`` pseudo-observations at the offline
difficulty when the example has one. Observed passes and fails are added as
evidence; evidence fades with age by ``decay ** steps_since_seen``, so an item
not seen for long drifts back to its prior and gets re-explored.

The policy improves on what it trains on, so an item's evidence goes stale in
one direction: its pass rate rises after the look that recorded it. A
per-domain offset on the logit scale, fitted online to how repeat looks beat
their predictions, moves the means of seen items to where they are now.

A group of G rollouts gives gradient only when it mixes passes and fails; for
pass rate p that happens with probability ``1 - p**G - (1 - p)**G``.
"""

from __future__ import annotations

import math

import numpy as np


def prior_params(mean: np.ndarray | float, strength: float) -> tuple[np.ndarray, np.ndarray]:
    mean = np.clip(mean, 1e-3, 1 - 1e-3)
    return mean * strength, (1 - mean) * strength


def beta_binomial_prior(looks: float, passes: float, passes_squared: float, group_size: int,
                        max_strength: float) -> tuple[float, float] | None:
    """Beta(a, b) whose beta-binomial matches the mean and variance of pass counts out of ``group_size``.

    ``looks``, ``passes`` and ``passes_squared`` are (possibly decayed) sums of 1, k and k**2 over groups.
    Method of moments: the intra-class correlation ``rho = 1 / (a + b + 1)`` follows from how far the count
    variance exceeds the binomial's. ``a + b`` is capped at ``max_strength`` so an item's own groups can
    still move its posterior. None when fewer than two looks back it (no variance estimate yet).
    """
    if looks < 2 or group_size < 2:
        return None
    mean_count = passes / looks
    rate = min(max(mean_count / group_size, 1e-3), 1 - 1e-3)
    count_variance = max(passes_squared / looks - mean_count**2, 0.0)
    rho = (count_variance / (group_size * rate * (1 - rate)) - 1) / (group_size - 1)
    rho = min(max(rho, 1e-3), 0.999)
    strength = min(1 / rho - 1, max_strength)
    return rate * strength, (1 - rate) * strength


def decayed(evidence: np.ndarray, age: np.ndarray, decay: float) -> np.ndarray:
    """Evidence counts faded by ``decay`` per step of age (age 0: unchanged)."""
    return evidence * np.power(decay, np.maximum(age, 0))


def shift_mean(a: np.ndarray, b: np.ndarray, logit_offset: np.ndarray | float) -> tuple[np.ndarray, np.ndarray]:
    """Beta(a, b) with its mean moved by ``logit_offset`` on the logit scale; the concentration a + b is kept."""
    strength = a + b
    mean = np.clip(a / strength, 1e-4, 1 - 1e-4)
    moved = np.clip(1 / (1 + np.exp(-(np.log(mean / (1 - mean)) + logit_offset))), 1e-4, 1 - 1e-4)
    return moved * strength, (1 - moved) * strength


def drift_step(passes: np.ndarray, rollouts: np.ndarray, predicted: np.ndarray, ridge: float) -> float:
    """One Newton step for a logit offset shared by a set of groups, from their outcomes and predictions.

    Maximises the binomial likelihood of ``passes`` out of ``rollouts`` at ``sigmoid(logit(predicted) + x)``
    around x = 0: the score is the sum of ``passes - rollouts * predicted`` and the information the sum of
    ``rollouts * predicted * (1 - predicted)``. ``ridge`` is a Gaussian prior's precision on the step, so a
    handful of groups cannot swing the offset (with no groups the step is 0).
    """
    passes, rollouts, predicted = (np.asarray(x, dtype=float) for x in (passes, rollouts, predicted))
    score = float(np.sum(passes - rollouts * predicted))
    information = float(np.sum(rollouts * predicted * (1 - predicted)))
    return score / (information + ridge)


def tempered(a: np.ndarray, b: np.ndarray, temperature: float) -> tuple[np.ndarray, np.ndarray]:
    """Beta(a / T, b / T): the same mean, concentration divided by T (T = 1: plain Thompson sampling)."""
    return a / temperature, b / temperature


def informative_probability(p, group_size: int):
    """Probability that G rollouts at pass rate p are neither all passes nor all fails."""
    p = np.asarray(p, dtype=float)
    return 1.0 - p**group_size - (1.0 - p) ** group_size


def expected_informative(a: np.ndarray, b: np.ndarray, group_size: int) -> np.ndarray:
    """E[1 - p^G - (1 - p)^G] for p ~ Beta(a, b): the chance a group of G is informative, averaged over what
    is not yet known of p. Exact, from the Beta moments E[p^G] = prod_j (a + j) / (a + b + j), j < G."""
    a, b = np.asarray(a, dtype=float)[..., None], np.asarray(b, dtype=float)[..., None]
    j = np.arange(group_size)
    all_pass = np.prod((a + j) / (a + b + j), axis=-1)
    all_fail = np.prod((b + j) / (a + b + j), axis=-1)
    return np.clip(1.0 - all_pass - all_fail, 0.0, 1.0)


def informative_floors(informative_mass: dict[str, float], base: dict[str, float], scale: float,
                       floor: float) -> dict[str, float]:
    """Per-domain least share of the picks: ``scale`` x the domain's share of the expected informative items
    (``informative_mass``, tilted by the base mix), and never below the fixed ``floor``. ``scale`` is cut to
    what the fixed floors leave, so the floors always sum to at most 1."""
    tilted = {d: base[d] * max(informative_mass.get(d, 0.0), 0.0) for d in base}
    total = sum(tilted.values())
    scale = max(0.0, min(scale, 1.0 - floor * len(base)))
    return {d: max(floor, scale * tilted[d] / total if total > 0 else 0.0) for d in base}


def tier_of(mean: np.ndarray, easy_above: float, hard_below: float) -> np.ndarray:
    """0 = hard, 1 = medium, 2 = easy."""
    return np.where(mean >= easy_above, 2, np.where(mean <= hard_below, 0, 1))


def expansion_ratio(zero_variance_ema: float, max_ratio: float) -> float:
    """GLM-4.1V-Thinking: roll out 1 / (1 - not_valid_rate) times the batch to keep it full."""
    if zero_variance_ema >= 1.0:
        return max_ratio
    return min(max_ratio, 1.0 / (1.0 - zero_variance_ema))


def ema(previous: float | None, value: float, momentum: float) -> float:
    return value if previous is None else momentum * previous + (1 - momentum) * value


def credit(rewards, passes: int, evidence: str) -> float:
    """What a group adds to its item's pass count under the sampler's ``evidence`` rule: with ``reward``, each
    reward clipped to [0, 1] (partial credit is that share of a pass); with ``pass``, its ``passes``."""
    if evidence == "pass":
        return float(passes)
    return float(sum(min(max(r, 0.0), 1.0) for r in rewards))


def reward_variance(rewards) -> float:
    """The population variance of a group's rewards (0 for an empty group)."""
    if not rewards:
        return 0.0
    mean = sum(rewards) / len(rewards)
    return sum((r - mean) ** 2 for r in rewards) / len(rewards)


def balance_order(rewards: list[list[float]]) -> list[int]:
    """Group indices from most to least reward variance (ties keep their order). For pass/fail rewards
    the variance is p(1 - p), so this is |passes - G/2| ascending; partial credit ranks by its spread."""
    spreads = [reward_variance(group) for group in rewards]
    return sorted(range(len(rewards)), key=lambda i: (-spreads[i], i))


def domain_weights(base: dict[str, float], candidate_share: dict[str, float], floor: float | dict[str, float],
                   ceiling: float) -> dict[str, float]:
    """Base mix scaled by each domain's share of the most promising candidates, bounded to [floor, ceiling].

    ``weight_d ∝ base_d * candidate_share_d``: with an even base mix this is the domains' share of a single
    ranking of all examples; the base mix tilts it toward the domains a recipe favours. ``floor`` is one
    share for every domain or one per domain. Bounds are enforced by water-filling, so the result sums to 1.
    """
    raw = {d: base[d] * candidate_share.get(d, 0.0) for d in base}
    total = sum(raw.values())
    weights = {d: (v / total if total > 0 else 1 / len(raw)) for d, v in raw.items()}
    floors = floor if isinstance(floor, dict) else {d: floor for d in weights}
    if sum(floors.get(d, 0.0) for d in weights) > 1 + 1e-9 or ceiling * len(weights) < 1:
        raise ValueError(f"domain floor {floor} / ceiling {ceiling} cannot hold {len(weights)} domains")
    floors = {d: min(floors.get(d, 0.0), ceiling) for d in weights}
    fixed: dict[str, float] = {}
    for _ in range(2 * len(weights) + 1):
        free = [d for d in weights if d not in fixed]
        if not free:
            break
        budget = 1 - sum(fixed.values())
        free_total = sum(weights[d] for d in free)
        proposal = {d: budget * (weights[d] / free_total if free_total > 0 else 1 / len(free)) for d in free}
        over = [d for d in free if proposal[d] > ceiling + 1e-12]
        if over:  # cap first, then re-spread what the capped domains gave up
            fixed.update({d: ceiling for d in over})
            continue
        under = [d for d in free if proposal[d] < floors[d] - 1e-12]
        if under:
            fixed.update({d: floors[d] for d in under})
            continue
        return {**fixed, **proposal}
    total = sum(fixed.values())
    return {d: v / total for d, v in fixed.items()}


def allocate(total: int, weights: dict[str, float]) -> dict[str, int]:
    """Integer counts summing to ``total`` in proportion to weights (largest remainder, ties by name)."""
    exact = {d: total * w for d, w in weights.items()}
    counts = {d: math.floor(v) for d, v in exact.items()}
    rest = total - sum(counts.values())
    for d in sorted(exact, key=lambda d: (-(exact[d] - counts[d]), d))[:rest]:
        counts[d] += 1
    return counts
