"""The sampler interface the RL loop talks to, and the uniform baseline.

Every process holds its own sampler, seeded alike and fed the same gathered
outcomes in the same order, so all make the same pick without communicating.
"""

from __future__ import annotations

import hashlib
import json
import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from rlcs.curriculum.maths import reward_variance

SIGNAL_RTOL = 1e-4


def carries_signal(rewards: Sequence[float], rtol: float = SIGNAL_RTOL) -> bool:
    """Whether a group's rewards differ, so its advantages are not all zero: their (population) standard
    deviation exceeds ``rtol`` of the reward scale (the largest magnitude, at least 1). Partial credit
    counts (0.5 and 0.8 differ although neither passes); float noise (0.5 and 0.50001) does not."""
    if not rewards:
        return False
    return reward_variance(rewards) ** 0.5 > rtol * max(1.0, max(abs(r) for r in rewards))


@dataclass
class GroupOutcome:
    example_id: str
    domain: str
    rewards: list[float]
    passes: int  # completions whose reward reached the pass threshold (the pass-rate evidence)

    @property
    def informative(self) -> bool:
        """The group carries gradient: its rewards differ (partial credit counts, see ``carries_signal``)."""
        return carries_signal(self.rewards)


class Sampler(Protocol):
    """What the RL loop asks of a sampler, in the order it asks it each step."""

    def rollout_count(self, batch: int) -> int:
        """How many examples to roll out for a batch of ``batch`` groups."""

    def pick(self, count: int) -> list[dict]: ...

    def update(self, outcomes: Sequence[GroupOutcome]) -> None: ...

    def refill(self, outcomes: Sequence[GroupOutcome], batch: int) -> int:
        """How many more examples to roll out this step, given this step's outcomes so far (0: none)."""

    def select(self, outcomes: Sequence[GroupOutcome], batch: int) -> list[int]:
        """Indices of the ``batch`` groups the optimizer trains on."""

    def metrics(self) -> dict[str, float]: ...

    def state_dict(self) -> dict: ...

    def load_state_dict(self, state: dict) -> None: ...


class UniformSampler:
    """Every example equally often: shuffled passes over the data, without replacement."""

    def __init__(self, examples: Sequence[dict], seed: int):
        if not examples:
            raise ValueError("the RL dataset is empty")
        self.examples = list(examples)
        self.rng = random.Random(seed)
        self.order: list[int] = []
        self.position = 0
        self.epoch = 0
        self.rollouts_total = self.informative_total = 0
        self.last_zero_variance = 0.0

    def pick(self, count: int) -> list[dict]:
        picked = []
        while len(picked) < count:
            if self.position >= len(self.order):
                self.order = list(range(len(self.examples)))
                self.rng.shuffle(self.order)
                self.position = 0
                self.epoch += 1
            picked.append(self.examples[self.order[self.position]])
            self.position += 1
        return picked

    def rollout_count(self, batch: int) -> int:
        return batch

    def update(self, outcomes: Sequence[GroupOutcome]) -> None:
        self.rollouts_total += sum(len(o.rewards) for o in outcomes)
        self.informative_total += sum(o.informative for o in outcomes)
        self.last_zero_variance = sum(not o.informative for o in outcomes) / max(len(outcomes), 1)

    def refill(self, outcomes: Sequence[GroupOutcome], batch: int) -> int:
        return 0

    def select(self, outcomes: Sequence[GroupOutcome], batch: int) -> list[int]:
        return list(range(min(batch, len(outcomes))))

    def metrics(self) -> dict[str, float]:
        return {"curriculum/epoch": self.epoch, "curriculum/zero_variance_frac": self.last_zero_variance,
                "curriculum/rollouts_total": self.rollouts_total,
                "curriculum/informative_total": self.informative_total}

    def state_dict(self) -> dict:
        return {"order": self.order, "position": self.position, "epoch": self.epoch, "rng": self.rng.getstate(),
                "rollouts_total": self.rollouts_total, "informative_total": self.informative_total,
                "last_zero_variance": self.last_zero_variance}

    def load_state_dict(self, state: dict) -> None:
        self.order, self.position, self.epoch = list(state["order"]), state["position"], state["epoch"]
        version, internal, gauss = state["rng"]
        self.rng.setstate((version, tuple(internal), gauss))
        self.rollouts_total, self.informative_total = state["rollouts_total"], state["informative_total"]
        self.last_zero_variance = state["last_zero_variance"]


class DapoSampler(UniformSampler):
    """DAPO's dynamic sampling: uniform picks, zero-variance groups dropped, more rolled out until the
    batch is full of informative groups or ``max_refills`` extra rounds are spent."""

    def __init__(self, examples: Sequence[dict], seed: int, max_refills: int):
        super().__init__(examples, seed)
        self.max_refills = max_refills
        self.rounds = 0
        self.short_steps = 0

    def refill(self, outcomes: Sequence[GroupOutcome], batch: int) -> int:
        self.rounds += 1
        missing = batch - sum(o.informative for o in outcomes)
        if missing <= 0 or self.rounds > self.max_refills:
            self.rounds = 0
            self.short_steps += missing > 0
            return 0
        return missing

    def select(self, outcomes: Sequence[GroupOutcome], batch: int) -> list[int]:
        informative = [i for i, o in enumerate(outcomes) if o.informative]
        rest = [i for i, o in enumerate(outcomes) if not o.informative]
        return (informative + rest)[:batch]

    def metrics(self) -> dict[str, float]:
        return {**super().metrics(), "curriculum/short_batches_total": self.short_steps}

    def state_dict(self) -> dict:
        return {**super().state_dict(), "rounds": self.rounds, "short_steps": self.short_steps}

    def load_state_dict(self, state: dict) -> None:
        super().load_state_dict(state)
        self.rounds, self.short_steps = state["rounds"], state["short_steps"]


def build_sampler(config, examples: Sequence[dict], group_size: int, seed: int) -> Sampler:
    if config.name == "uniform":
        return UniformSampler(examples, seed)
    if config.name == "dapo":
        return DapoSampler(examples, seed, config.max_refills)
    if config.name == "rlcs":
        from rlcs.curriculum.sampler import RLCSSampler

        return RLCSSampler(examples, config, group_size, seed)
    raise ValueError(f"unknown sampler {config.name!r}")


def state_digest(sampler: Sampler) -> str:
    """A short fingerprint of the sampler's state, to check all processes agree."""
    state = json.dumps(sampler.state_dict(), sort_keys=True, default=str)
    return hashlib.sha1(state.encode()).hexdigest()[:16]
