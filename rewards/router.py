"""Route each completion to its domain's verifier and keep the run alive when one fails.

The recipe maps every domain to a verifier spec and keyword arguments; all are
resolved at start-up, so an unknown domain or spec fails before any rollout.
A verifier that raises gives the domain's minimum reward, is counted per domain
(``reward/<domain>/errors``) and logged with the example id.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial

from rewards.registry import RewardFn, RewardSpecError, get

log = logging.getLogger(__name__)


@dataclass
class DomainReward:
    fn: RewardFn
    min_reward: float = 0.0


@dataclass
class RewardRouter:
    domains: dict[str, DomainReward]
    errors: Counter = field(default_factory=Counter)

    @classmethod
    def from_config(cls, config: Mapping[str, Mapping], examples: Sequence[Mapping] = ()) -> RewardRouter:
        """``config``: domain -> {"verifier": spec, "kwargs": {...}, "min_reward": 0.0}."""
        domains = {}
        for domain, entry in config.items():
            try:
                fn = get(entry["verifier"])
            except RewardSpecError as exc:
                raise RewardSpecError(f"rewards.{domain}: {exc}") from None
            domains[domain] = DomainReward(partial(fn, **dict(entry.get("kwargs") or {})),
                                           float(entry.get("min_reward", 0.0)))
        missing = sorted({e["domain"] for e in examples} - set(domains))
        if missing:
            raise RewardSpecError(f"no verifier configured for domain(s) {missing}; add them under 'rewards'")
        return cls(domains)

    def score(self, completions: Sequence[str], examples: Sequence[Mapping]) -> list[float]:
        scores = []
        for completion, example in zip(completions, examples, strict=True):
            route = self.domains[example["domain"]]
            try:
                value = route.fn(completion, example)
                value = route.min_reward if value is None else float(value)
            except Exception as exc:  # a verifier bug must not end a long run
                self.errors[example["domain"]] += 1
                log.warning("verifier for %s raised on example %s: %r", example["domain"], example.get("id"), exc)
                value = route.min_reward
            scores.append(value)
        return scores
