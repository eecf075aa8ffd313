"""The baselines behind the sampler interface: ``uniform`` and ``dapo``."""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import ClassVar

from pydantic import Field

from rlcs.curriculum.interface import GroupOutcome, SamplerOptions


class UniformSampler:
    """Every example equally often: shuffled passes over the data, without replacement."""

    Options: ClassVar[type[SamplerOptions] | None] = None

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

    @classmethod
    def build(cls, examples: Sequence[dict], options: SamplerOptions | None, group_size: int,
              seed: int) -> UniformSampler:
        return cls(examples, seed)

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


class DapoOptions(SamplerOptions):
    """``sampler.dapo``: regenerate until the batch holds only informative groups."""

    max_refills: int = Field(3, ge=0, description="extra rollout rounds per step at most")


class DapoSampler(UniformSampler):
    """DAPO's dynamic sampling: uniform picks, zero-variance groups dropped, more rolled out until the
    batch is full of informative groups or ``max_refills`` extra rounds are spent."""

    Options: ClassVar[type[SamplerOptions] | None] = DapoOptions

    def __init__(self, examples: Sequence[dict], seed: int, max_refills: int):
        super().__init__(examples, seed)
        self.max_refills = max_refills
        self.rounds = 0
        self.short_steps = 0

    @classmethod
    def build(cls, examples: Sequence[dict], options: SamplerOptions | None, group_size: int,
              seed: int) -> DapoSampler:
        return cls(examples, seed, (options if options is not None else DapoOptions()).max_refills)

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
