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


@dataclass
class GroupOutcome:
    example_id: str
    domain: str
    rewards: list[float]
    passes: int  # completions whose reward reached the pass threshold

    @property
    def informative(self) -> bool:
        return 0 < self.passes < len(self.rewards)


class Sampler(Protocol):
    def pick(self, count: int) -> list[dict]: ...
    def update(self, outcomes: Sequence[GroupOutcome]) -> None: ...
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

    def update(self, outcomes: Sequence[GroupOutcome]) -> None:
        """Uniform sampling ignores outcomes."""

    def metrics(self) -> dict[str, float]:
        return {"curriculum/epoch": self.epoch}

    def state_dict(self) -> dict:
        return {"order": self.order, "position": self.position, "epoch": self.epoch, "rng": self.rng.getstate()}

    def load_state_dict(self, state: dict) -> None:
        self.order, self.position, self.epoch = list(state["order"]), state["position"], state["epoch"]
        version, internal, gauss = state["rng"]
        self.rng.setstate((version, tuple(internal), gauss))


def build_sampler(name: str, examples: Sequence[dict], seed: int) -> Sampler:
    if name == "uniform":
        return UniformSampler(examples, seed)
    raise ValueError(f"unknown sampler {name!r}")


def state_digest(sampler: Sampler) -> str:
    """A short fingerprint of the sampler's state, to check all processes agree."""
    return hashlib.sha1(json.dumps(sampler.state_dict(), sort_keys=True, default=str).encode()).hexdigest()[:16]
