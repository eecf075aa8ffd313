"""The RLCS sampler: per-example Beta posteriors drive which examples get rolled out.

Each step:
  rollout_count(batch) -> batch x expansion ratio (EMA of the uninformative-group rate)
  pick(n)              -> Thompson-sample p ~ Beta (tempered) for every example and rank by the
                          chance a group of G is informative; domain quotas are the base mix x
                          each domain's share of the top of that ranking, at least `informative_floor`
                          x its share of the expected informative items (ceiling); an `explore`
                          share is drawn uniformly from all examples; retired items (never a pass nor
                          an informative group in `retire_after` looks) sit out all of it but once
                          every `retire_revisit` steps
  update(outcomes)     -> drift offsets (decayed toward 0, then moved by how repeat looks beat their
                          predictions, against a ridge), posteriors, looks and retirement,
                          each domain's empirical prior (from first looks), domain EMAs, expansion EMA
  select(outcomes, b)  -> the b most balanced groups go to the optimizer
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from typing import ClassVar, Literal

import numpy as np
from pydantic import Field

from rlcs.curriculum import maths
from rlcs.curriculum.interface import GroupOutcome, SamplerOptions, index_by_id


class RLCSOptions(SamplerOptions):
    """``sampler.rlcs``: per-example Beta posteriors of the pass rate (docs/curriculum.md explains every knob)."""

    prior_strength: float = Field(2.0, gt=0, description="pseudo-observations behind an offline difficulty, "
                                  "and behind the domain prior before two first looks")
    initial_pass_rate: float = Field(0.5, gt=0, lt=1, description="domain prior before any evidence")
    decay: float = Field(0.99, gt=0, le=1, description="evidence kept per step an item goes unseen")
    explore: float = Field(0.02, ge=0, le=1, description="share of the picks drawn uniformly from all examples")
    thompson_temperature: float = Field(0.25, gt=0, le=1, description="Thompson draws from Beta(a/T, b/T): "
                                        "1 is plain Thompson sampling, smaller trusts the posterior mean more")
    drift_correction: bool = Field(True, description="shift seen items' pass rates by a per-domain logit "
                                   "offset fitted to how repeat looks beat their predictions")
    easy_above: float = Field(0.8, gt=0, le=1)
    hard_below: float = Field(0.2, ge=0, lt=1)
    domain_mix: dict[str, float] = Field(default_factory=dict, description="base weight per domain (1 if absent)")
    domain_floor: float = Field(0.0, ge=0, le=1, description="least share of the ranked picks per domain")
    informative_floor: float = Field(0.35, ge=0, le=1, description="each domain keeps at least this x its "
                                     "share of the expected informative items among the ranked picks")
    drift_ridge: float = Field(32.0, ge=0, description="evidence a drift offset needs, in balanced groups' "
                               "information (a Gaussian prior's precision around 0 on each step)")
    drift_decay: float = Field(0.95, gt=0, le=1, description="drift offsets kept per step; the rest "
                               "reverts to 0 unless repeat looks keep confirming it")
    domain_ceiling: float = Field(1.0, gt=0, le=1)
    ema_momentum: float = Field(0.7, ge=0, lt=1)
    max_expansion: float = Field(3.0, ge=1, description="cap of the rollout expansion ratio")
    retire_after: int = Field(3, ge=0, description="looks (groups) with no pass and no informative group after "
                              "which an item is retired to the hard tier; 0: never retire")
    retire_revisit: int = Field(50, ge=1, description="a retired item is picked at most once in this many "
                                "steps (by the ranking, a quota or exploration); a pass brings it back")
    prior_by: list[str] = Field(default_factory=list, description="row fields that split each domain's "
                                "empirical prior into strata, e.g. [level]: unseen items of a stratum take "
                                "its first looks' prior, shrunk toward the domain's")
    stratum_shrinkage: float = Field(4.0, ge=2, description="first looks' worth of the domain's prior that a "
                                     "stratum's prior starts from (sampler.rlcs.prior_by); at least 2, the "
                                     "looks a beta-binomial fit needs")
    unseen_draw: Literal["item", "stratum"] = Field("item", description="Thompson draws for items never "
                                                    "rolled out: 'item', one per item; 'stratum', one per "
                                                    "stratum (prior_by, else per domain) shared by its unseen "
                                                    "items without an offline difficulty, so a stratum's size "
                                                    "does not buy it the top of the ranking")
    evidence: Literal["reward", "pass"] = Field("reward", description="what one rollout adds to its item's "
                                                "posterior: 'reward', its reward clipped to [0, 1] (partial "
                                                "credit is that share of a pass; 0/1 rewards give the same as "
                                                "'pass'), or 'pass', 1 when the reward reaches the pass threshold")


TIERS = ("hard", "medium", "easy")


class RLCSSampler:
    Options: ClassVar[type[SamplerOptions] | None] = RLCSOptions

    def __init__(self, examples: Sequence[dict], config: RLCSOptions, group_size: int, seed: int):
        if not examples:
            raise ValueError("the RL dataset is empty")
        self.examples = list(examples)
        self.config, self.group_size = config, group_size
        self.rng = np.random.default_rng(seed)
        self.index = index_by_id(self.examples)
        self.domains = sorted({e["domain"] for e in self.examples})
        self.domain_of = np.array([self.domains.index(e["domain"]) for e in self.examples])
        self.strata, self.stratum_of = _strata(self.examples, config.prior_by)
        self.domain_of_stratum = np.array([self.domains.index(s[0]) for s in self.strata], dtype=np.int64)
        self.offline = np.array([e.get("difficulty", np.nan) for e in self.examples], dtype=float)
        n = len(self.examples)
        self.passes, self.fails = np.zeros(n), np.zeros(n)
        self.last_seen = np.full(n, -1, dtype=np.int64)
        # retirement: groups rolled out per item (never faded), and whether any of them passed or differed
        self.looks = np.zeros(n, dtype=np.int64)
        self.taught = np.zeros(n, dtype=bool)
        self.step = 0
        self.domain_pass_rate = {d: config.initial_pass_rate for d in self.domains}
        self.domain_yield = {d: 0.5 for d in self.domains}
        # per stratum (``prior_by``; the domains without it), decayed sums over first looks at its items of
        # (1, credit, credit**2) (``_credit``); a domain's sums are its strata's added up (``first_looks``)
        self.stratum_first_looks = np.zeros((len(self.strata), 3))
        # per domain, logit offset between seen items' evidence and their pass rate now
        self.drift = np.zeros(len(self.domains))
        self.last_weights = {d: 1 / len(self.domains) for d in self.domains}
        self.last_floors = {d: 0.0 for d in self.domains}
        self.zero_variance_ema: float | None = None
        self.rollouts_total = self.informative_total = 0
        self.last_picked: list[int] = []
        self.last_zero_variance = 0.0
        missing = set(config.domain_mix) - set(self.domains)
        if missing:
            raise ValueError(f"sampler.rlcs.domain_mix names domains not in the data: {sorted(missing)}")

    @classmethod
    def build(cls, examples: Sequence[dict], options: SamplerOptions | None, group_size: int,
              seed: int) -> RLCSSampler:
        return cls(examples, options if options is not None else RLCSOptions(), group_size, seed)

    # -- posteriors ---------------------------------------------------------
    @property
    def first_looks(self) -> np.ndarray:
        """Per domain, the decayed sums over first looks at its items of (1, credit, credit**2)."""
        sums = np.zeros((len(self.domains), 3))
        np.add.at(sums, self.domain_of_stratum, self.stratum_first_looks)
        return sums

    def domain_priors(self) -> list[tuple[float, float] | None]:
        """Each domain's empirical Beta prior, fitted to first looks; None until two first looks back it.

        First looks are an unbiased sample of a domain's items (unseen items share one prior, so which one
        is picked is random), which makes them the right data for the spread of pass rates in the domain:
        a domain of all-or-nothing items gets a U-shaped prior and its unseen items stop looking promising.
        """
        return [maths.beta_binomial_prior(*sums, self.group_size, 2.0 * self.group_size) for sums in self.first_looks]

    def stratum_priors(self) -> list[tuple[float, float] | None]:
        """Each stratum's empirical Beta prior (``prior_by``), None while its domain's is None.

        A stratum's first looks are pooled with ``stratum_shrinkage`` first looks' worth of its domain's
        moments, so a stratum with no first looks has exactly its domain's prior and one with many has its
        own: a level whose first looks all fail stops looking promising while its domain's other levels do not.
        """
        if not self.config.prior_by:
            return self.domain_priors()
        domain_sums = self.first_looks[self.domain_of_stratum]
        looks = domain_sums[:, :1]
        per_look = np.divide(domain_sums, looks, out=np.zeros_like(domain_sums), where=looks > 0)
        pooled = self.stratum_first_looks + self.config.stratum_shrinkage * per_look
        domain_fitted = [f is not None for f in self.domain_priors()]
        return [maths.beta_binomial_prior(*pooled[s], self.group_size, 2.0 * self.group_size)
                if domain_fitted[self.domain_of_stratum[s]] else None for s in range(len(self.strata))]

    def _prior(self) -> tuple[np.ndarray, np.ndarray]:
        """The stratum's prior (its domain's without ``prior_by``; empirical once fitted), plus
        ``prior_strength`` pseudo-observations at the offline difficulty where there is one; before its
        domain is fitted an offline difficulty stands alone."""
        strength = self.config.prior_strength
        fitted = self.stratum_priors()
        a_by_stratum, b_by_stratum = self._stratum_params(fitted)
        a0, b0 = a_by_stratum[self.stratum_of], b_by_stratum[self.stratum_of]
        offline = ~np.isnan(self.offline)
        if offline.any():
            domain_fitted = np.array([f is not None for f in fitted])[self.stratum_of]
            offline_a, offline_b = maths.prior_params(np.nan_to_num(self.offline), strength)
            a0 = np.where(offline, np.where(domain_fitted, a0, 0.0) + offline_a, a0)
            b0 = np.where(offline, np.where(domain_fitted, b0, 0.0) + offline_b, b0)
        return a0, b0

    def _stratum_params(self, fitted: list[tuple[float, float] | None] | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Beta(a, b) of each stratum: its empirical prior once fitted, else its domain's pass-rate EMA."""
        fitted = self.stratum_priors() if fitted is None else fitted
        unfitted = [maths.prior_params(self.domain_pass_rate[s[0]], self.config.prior_strength) for s in self.strata]
        return (np.array([(f or u)[0] for f, u in zip(fitted, unfitted)]),
                np.array([(f or u)[1] for f, u in zip(fitted, unfitted)]))

    def _evidence(self) -> tuple[np.ndarray, np.ndarray]:
        age = np.where(self.last_seen < 0, 0, self.step - self.last_seen)
        return (maths.decayed(self.passes, age, self.config.decay),
                maths.decayed(self.fails, age, self.config.decay))

    def posterior(self) -> tuple[np.ndarray, np.ndarray]:
        """Beta(a, b) of every example's pass rate now: prior plus faded evidence, and for examples with
        evidence the domain's drift offset, because the policy has moved on since that evidence."""
        a0, b0 = self._prior()
        passes, fails = self._evidence()
        a, b = a0 + passes, b0 + fails
        if not self.config.drift_correction:
            return a, b
        offset = self.drift[self.domain_of]
        shifted_a, shifted_b = maths.shift_mean(a, b, offset)
        moved = (self.last_seen >= 0) & (offset != 0)
        return np.where(moved, shifted_a, a), np.where(moved, shifted_b, b)

    def pass_rate_means(self) -> np.ndarray:
        a, b = self.posterior()
        return a / (a + b)

    # -- retirement ------------------------------------------------------------
    def retired(self) -> np.ndarray:
        """Items with ``retire_after`` looks or more and not one pass nor one informative group among them.

        The posterior alone already ranks such items low, but not out: quotas (``domain_floor``,
        ``domain_mix``) must be filled from a domain's best items however bad, exploration is uniform over
        everything, and evidence fades back to the prior while an item goes unseen. A partial-credit item
        whose rewards differ teaches although it never passes, so it is not retired."""
        if self.config.retire_after == 0:
            return np.zeros(len(self.examples), dtype=bool)
        return (self.looks >= self.config.retire_after) & ~self.taught

    def _resting(self) -> np.ndarray:
        """Retired items looked at within the last ``retire_revisit`` steps: out of this pick. The pick being
        made is for step ``self.step + 1``, so an item last seen at step s is back at step s + retire_revisit."""
        return self.retired() & (self.step + 1 - self.last_seen < self.config.retire_revisit)

    # -- the loop's interface -------------------------------------------------
    def rollout_count(self, batch: int) -> int:
        ratio = maths.expansion_ratio(self.zero_variance_ema or 0.0, self.config.max_expansion)
        return min(len(self.examples), math.ceil(batch * ratio))

    def pick(self, count: int) -> list[dict]:
        count = min(count, len(self.examples))
        a, b = self.posterior()
        draws = self.rng.beta(*maths.tempered(a, b, self.config.thompson_temperature))
        score = maths.informative_probability(draws, self.group_size)
        order = np.arange(len(score))
        if self.config.unseen_draw == "stratum":
            # unseen items of a stratum share one prior, so draws of their own are noise that lets the largest
            # stratum take the top of the ranking by its count alone (docs/curriculum.md, `unseen_draw`). The
            # price: a stratum's unseen items now enter the top as one tied block, so one draw sets how much of
            # the top, and of the domain quotas drawn from it, their domain gets this step
            shared = self.rng.beta(*maths.tempered(*self._stratum_params(), self.config.thompson_temperature))
            unseen = (self.last_seen < 0) & np.isnan(self.offline)  # an offline difficulty is a prior of its own
            score = np.where(unseen, maths.informative_probability(shared, self.group_size)[self.stratum_of], score)
            order = self.rng.permutation(len(score))  # unseen items tie: a random order among them, not the data's
        resting = self._resting()
        if resting.any():  # resting retired items rank after every other item (scores are >= 0)
            score = np.where(resting, -1.0, score)
        ranked = order[np.argsort(-score[order], kind="stable")]
        candidates = ranked[: len(ranked) - int(resting.sum())]
        explore = int(self.rng.binomial(count, self.config.explore))
        ranked_count = count - explore
        # a domain's quota follows how much of the top of the single ranking it holds, tilted by the base mix
        top_domains = np.bincount(self.domain_of[candidates[:ranked_count]], minlength=len(self.domains))
        share = {d: top_domains[k] / max(ranked_count, 1) for k, d in enumerate(self.domains)}
        self.last_floors = self._floors(a, b, resting)
        self.last_weights = maths.domain_weights(self._base_mix(), share, self.last_floors,
                                                 self.config.domain_ceiling)
        quotas = maths.allocate(ranked_count, self.last_weights)
        chosen: list[int] = []
        for k, domain in enumerate(self.domains):
            chosen += candidates[self.domain_of[candidates] == k][: quotas[domain]].tolist()
        if len(chosen) < ranked_count:  # a domain smaller than its quota: the best-ranked rest fill in
            rest = ranked[~np.isin(ranked, chosen)]
            chosen += rest[: ranked_count - len(chosen)].tolist()
        if explore:  # uniform picks keep every example, in every domain, within reach (bar resting ones)
            pool = np.setdiff1d(np.flatnonzero(~resting), chosen)
            chosen += self.rng.choice(pool, size=min(explore, len(pool)), replace=False).tolist()
        if len(chosen) < count:  # only resting items are left: a full pick matters more than their rest
            rest = ranked[~np.isin(ranked, chosen)]
            chosen += rest[: count - len(chosen)].tolist()
        self.last_picked = [int(i) for i in chosen]
        return [self.examples[i] for i in self.last_picked]

    def _floors(self, a: np.ndarray, b: np.ndarray, resting: np.ndarray) -> dict[str, float]:
        """Each domain's least share of the ranked picks: ``informative_floor`` x its share of the expected
        informative items. Tempered draws sit near a domain's prior, so a domain whose first looks mostly
        fail ranks below every known mid-range item and its few medium items are never found; the floor
        keeps looking there for as long as its posteriors say informative items are left, and fades
        once they say none are (a domain of all-fail items gets a tight prior near 0 and no floor).
        Resting retired items cannot be picked, so they add nothing to their domain's floor."""
        expected = maths.expected_informative(a, b, self.group_size)
        # squared, so that a domain's many long shots (all-fail items at ~0.15 each) do not add up to the
        # floor of a few likely items: on the tuning worlds, unsquared mass spent the floor on base's hard
        # domain (19% zero-variance groups against 15%), a fourth power starved skewed's hard domain again
        mass = np.bincount(self.domain_of, weights=np.where(resting, 0.0, expected**2), minlength=len(self.domains))
        return maths.informative_floors(dict(zip(self.domains, mass.tolist())), self._base_mix(),
                                        self.config.informative_floor, self.config.domain_floor)

    def update(self, outcomes: Sequence[GroupOutcome]) -> None:
        if self.config.drift_correction:
            # offsets revert toward 0 unless repeat looks keep confirming them: a few unlucky looks, or
            # a policy that stopped improving, must not leave a domain's means shifted for good
            self.drift *= self.config.drift_decay
            self._update_drift(outcomes)
        self.step += 1
        a_passes, a_fails = self._evidence()
        self.stratum_first_looks *= self.config.decay
        by_domain: dict[str, list[tuple[GroupOutcome, float]]] = {}  # domain -> (outcome, its credit)
        added: dict[int, list[float]] = {}  # item -> [credit, rest] of this step (one item may come twice)
        for outcome in outcomes:
            i = self.index.get(outcome.example_id)
            if i is None:
                continue
            credit = self._credit(outcome)
            if self.last_seen[i] < 0 and i not in added and len(outcome.rewards) == self.group_size:
                self.stratum_first_looks[self.stratum_of[i]] += (1.0, credit, credit**2)
            counts = added.setdefault(i, [0.0, 0.0])
            counts[0] += credit
            counts[1] += len(outcome.rewards) - credit
            self.looks[i] += 1  # every group is a look, two of one item in one step included
            self.taught[i] |= outcome.passes > 0 or outcome.informative
            by_domain.setdefault(outcome.domain, []).append((outcome, credit))
        for i, (passes, fails) in added.items():
            # fold the faded evidence in at this step, then add the step's outcomes
            self.passes[i], self.fails[i] = a_passes[i] + passes, a_fails[i] + fails
            self.last_seen[i] = self.step
        momentum = self.config.ema_momentum
        for domain, group in by_domain.items():
            rate = sum(credit for _, credit in group) / sum(len(o.rewards) for o, _ in group)
            informative = sum(o.informative for o, _ in group) / len(group)
            self.domain_pass_rate[domain] = maths.ema(self.domain_pass_rate[domain], rate, momentum)
            self.domain_yield[domain] = maths.ema(self.domain_yield[domain], informative, momentum)
        if outcomes:
            zero_variance = sum(not o.informative for o in outcomes) / len(outcomes)
            self.last_zero_variance = zero_variance
            self.zero_variance_ema = maths.ema(self.zero_variance_ema, zero_variance, momentum)
        self.rollouts_total += sum(len(o.rewards) for o in outcomes)
        self.informative_total += sum(o.informative for o in outcomes)

    def _credit(self, outcome: GroupOutcome) -> float:
        """The group's passes as its item's posterior counts them (``evidence``). With partial credit,
        counting only full passes makes an item whose rewards differ in every group look all-fail, so it
        ranks near the bottom, though each of its groups carries gradient (a transcription domain scored
        by edit distance got 3% of rlcs's picks on the tiny model, docs/curriculum.md). ``reward`` assumes
        rewards in [0, 1] with 1 a pass: with shaping terms (a format bonus) use ``pass``."""
        return maths.credit(outcome.rewards, outcome.passes, self.config.evidence)

    def _update_drift(self, outcomes: Sequence[GroupOutcome]) -> None:
        """Move each domain's offset by one Newton step toward explaining its repeat looks of this step.

        Predictions are the current (already shifted) posterior means, so the offset converges to where
        repeat looks stop beating their predictions; first looks test the domain prior, not the drift.
        """
        repeats = [(self.index[o.example_id], o) for o in outcomes
                   if o.example_id in self.index and self.last_seen[self.index[o.example_id]] >= 0]
        if not repeats:
            return
        a, b = self.posterior()
        items = np.array([i for i, _ in repeats])
        passes = np.array([self._credit(o) for _, o in repeats])
        rollouts = np.array([len(o.rewards) for _, o in repeats])
        predicted = a[items] / (a[items] + b[items])
        for k in np.unique(self.domain_of[items]):
            in_domain = self.domain_of[items] == k
            self.drift[k] += maths.drift_step(passes[in_domain], rollouts[in_domain], predicted[in_domain],
                                              ridge=self.config.drift_ridge * self.group_size / 4)

    def refill(self, outcomes: Sequence[GroupOutcome], batch: int) -> int:
        return 0  # RLCS over-samples up front instead of regenerating

    def select(self, outcomes: Sequence[GroupOutcome], batch: int) -> list[int]:
        return maths.balance_order([o.rewards for o in outcomes])[:batch]

    # -- dashboard and state -------------------------------------------------
    def metrics(self) -> dict[str, float]:
        means = self.pass_rate_means()
        retired = self.retired()
        # a retired item is hard whatever its faded evidence says now
        tiers = np.where(retired, 0, maths.tier_of(means, self.config.easy_above, self.config.hard_below))
        picked_tiers = Counter(tiers[self.last_picked].tolist()) if self.last_picked else Counter()
        metrics = {
            "curriculum/zero_variance_frac": self.last_zero_variance,
            "curriculum/expansion_ratio": maths.expansion_ratio(self.zero_variance_ema or 0.0,
                                                                self.config.max_expansion),
            "curriculum/rollouts_total": self.rollouts_total,
            "curriculum/informative_total": self.informative_total,
            "curriculum/retired": int(retired.sum()),
        }
        for t, name in enumerate(TIERS):
            metrics[f"curriculum/tier/{name}"] = float((tiers == t).mean())
            metrics[f"curriculum/sampled/{name}"] = picked_tiers[t] / max(len(self.last_picked), 1)
        for k, domain in enumerate(self.domains):
            metrics[f"curriculum/domain/{domain}/pass_rate"] = self.domain_pass_rate[domain]
            metrics[f"curriculum/domain/{domain}/weight"] = self.last_weights[domain]
            metrics[f"curriculum/domain/{domain}/floor"] = self.last_floors[domain]
            metrics[f"curriculum/domain/{domain}/yield"] = self.domain_yield[domain]
            metrics[f"curriculum/domain/{domain}/drift"] = float(self.drift[k])
        if self.config.prior_by:  # what an unseen item of each stratum is expected to pass now
            for label, fitted in zip(self.strata, self.stratum_priors()):
                if fitted is not None:
                    name = "/".join(str(part) for part in label)
                    metrics[f"curriculum/stratum/{name}/prior_mean"] = fitted[0] / (fitted[0] + fitted[1])
        metrics["curriculum/pass_rate_histogram"] = np.histogram(means, bins=10, range=(0, 1))[0].tolist()
        return metrics

    def extremes(self, count: int = 10) -> dict[str, list[dict]]:
        """The examples the sampler currently believes hardest and easiest (posterior mean, evidence)."""
        means = self.pass_rate_means()
        passes, fails = self._evidence()
        seen = np.flatnonzero(self.last_seen >= 0)
        order = seen[np.argsort(means[seen], kind="stable")]

        def describe(i: int) -> dict:
            return {"id": self.examples[i]["id"], "domain": self.examples[i]["domain"],
                    "pass_rate": round(float(means[i]), 4), "evidence": round(float(passes[i] + fails[i]), 2)}

        return {"hardest": [describe(i) for i in order[:count]], "easiest": [describe(i) for i in order[::-1][:count]]}

    def _base_mix(self) -> dict[str, float]:
        mix = self.config.domain_mix
        return {d: float(mix.get(d, 1.0)) if mix else 1.0 for d in self.domains}

    def state_dict(self) -> dict:
        return {
            "passes": self.passes.tolist(), "fails": self.fails.tolist(), "last_seen": self.last_seen.tolist(),
            "looks": self.looks.tolist(), "taught": self.taught.tolist(),
            "step": self.step, "domain_pass_rate": dict(self.domain_pass_rate),
            "domain_yield": dict(self.domain_yield), "zero_variance_ema": self.zero_variance_ema,
            # the per-domain sums too, which states saved before strata existed held alone
            "first_looks": self.first_looks.tolist(), "drift": self.drift.tolist(),
            "prior_by": list(self.config.prior_by), "strata": [list(label) for label in self.strata],
            "stratum_first_looks": self.stratum_first_looks.tolist(),
            "last_weights": dict(self.last_weights), "last_floors": dict(self.last_floors),
            "rollouts_total": self.rollouts_total, "informative_total": self.informative_total,
            "last_picked": list(self.last_picked), "last_zero_variance": self.last_zero_variance,
            "ids": [e["id"] for e in self.examples], "rng": self.rng.bit_generator.state,
            "evidence": self.config.evidence,
        }

    def load_state_dict(self, state: dict) -> None:
        if state["ids"] != [e["id"] for e in self.examples]:
            raise ValueError("sampler state was saved for a different dataset (example ids differ)")
        # states saved before the option existed counted full passes
        saved = state.get("evidence", "pass")
        if saved != self.config.evidence:
            raise ValueError(f"sampler state was saved with sampler.rlcs.evidence={saved}, this run has "
                             f"{self.config.evidence}: its posteriors would mix two kinds of evidence; set "
                             f"sampler.rlcs.evidence={saved} to resume it")
        saved_by = state.get("prior_by", [])
        if saved_by != list(self.config.prior_by):
            raise ValueError(f"sampler state was saved with sampler.rlcs.prior_by={saved_by}, this run has "
                             f"{list(self.config.prior_by)}: its per-stratum first looks would not fit; set "
                             f"sampler.rlcs.prior_by={saved_by} to resume it")
        if "strata" in state and state["strata"] != [list(label) for label in self.strata]:
            raise ValueError(f"sampler state was saved for other strata of sampler.rlcs.prior_by={saved_by} "
                             f"({len(state['strata'])} against {len(self.strata)} now): the rows' values of "
                             f"those fields changed")
        self.passes, self.fails = np.array(state["passes"]), np.array(state["fails"])
        self.last_seen = np.array(state["last_seen"], dtype=np.int64)
        # states saved before retirement existed restore with no looks counted: items retire afresh
        self.looks = np.array(state.get("looks", np.zeros(len(self.examples))), dtype=np.int64)
        self.taught = np.array(state.get("taught", np.zeros(len(self.examples))), dtype=bool)
        self.step = state["step"]
        self.domain_pass_rate, self.domain_yield = dict(state["domain_pass_rate"]), dict(state["domain_yield"])
        self.zero_variance_ema = state["zero_variance_ema"]
        # without prior_by strata are the domains, and states saved before strata existed had only those
        self.stratum_first_looks = np.array(state.get("stratum_first_looks", state["first_looks"]),
                                            dtype=float).reshape(len(self.strata), 3)
        self.drift = np.array(state["drift"], dtype=float)
        self.last_weights = dict(state["last_weights"])
        # states saved before the floor existed restore with no floor reported yet
        self.last_floors = dict(state.get("last_floors", {d: 0.0 for d in self.domains}))
        self.rollouts_total, self.informative_total = state["rollouts_total"], state["informative_total"]
        self.last_picked, self.last_zero_variance = list(state["last_picked"]), state["last_zero_variance"]
        self.rng.bit_generator.state = state["rng"]


def _strata(examples: Sequence[dict], fields: Sequence[str]) -> tuple[list[tuple], np.ndarray]:
    """The sorted (domain, value of each field...) strata and every example's stratum index. A row without a
    field is its own stratum (None); a field no row has is a recipe error, not a silent single stratum."""
    for field in fields:
        if not any(field in e for e in examples):
            raise ValueError(f"sampler.rlcs.prior_by names {field!r}, which no RL row has")
        bad = next((e for e in examples if not isinstance(e.get(field), (str, int, float, type(None)))), None)
        if bad is not None:
            raise ValueError(f"sampler.rlcs.prior_by: row {bad['id']!r} has {field}={bad[field]!r}; a stratum "
                             f"value must be a string, a number or absent")
    labels = [(e["domain"], *(_stratum_value(e.get(field)) for field in fields)) for e in examples]
    # an order that does not depend on set iteration (hash seeds differ across processes): numbers by value,
    # then strings, then absent; 1 and "1" are two strata, in a fixed order
    strata = sorted(set(labels), key=lambda label: tuple(_order(part) for part in label))
    position = {label: k for k, label in enumerate(strata)}
    return strata, np.array([position[label] for label in labels], dtype=np.int64)


def _stratum_value(value):
    return None if isinstance(value, float) and math.isnan(value) else value


def _order(part) -> tuple:
    if part is None:
        return (2, 0, "")
    if isinstance(part, str):
        return (1, 0, part)
    return (0, float(part), type(part).__name__)
