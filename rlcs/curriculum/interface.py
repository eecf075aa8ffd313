"""What the RL loop asks of a sampler, and what it tells it: the ``Sampler`` protocol, ``GroupOutcome``,
the informative-group rule, a state digest, and the base of every sampler's recipe section.

Every process holds its own sampler, seeded alike and fed the same gathered outcomes in the same order,
so all make the same pick without communicating.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar, Protocol

from pydantic import BaseModel, ConfigDict

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

    def __post_init__(self):
        if not all(math.isfinite(r) for r in self.rewards):  # one NaN would poison the domain's posteriors
            raise ValueError(f"group of {self.example_id!r}: non-finite reward in {self.rewards}")

    @property
    def informative(self) -> bool:
        """The group carries gradient: its rewards differ (partial credit counts, see ``carries_signal``)."""
        return carries_signal(self.rewards)


class SamplerOptions(BaseModel):
    """A sampler's own recipe section (``sampler.<name>``). The same rules as ``rlcs.config.Section``
    (unknown keys are errors): it is declared here rather than imported because ``rlcs.config`` builds the
    ``sampler`` section from the registry, so the samplers cannot import ``rlcs.config``."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class Sampler(Protocol):
    """What the RL loop asks of a sampler, in the order it asks it each step."""

    # its recipe section's schema (``sampler.<name>``), None for a sampler without options
    Options: ClassVar[type[SamplerOptions] | None]

    @classmethod
    def build(cls, examples: Sequence[dict], options: SamplerOptions | None, group_size: int,
              seed: int) -> Sampler:
        """The sampler for a run: its examples, its recipe section, G and the run's seed."""

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


def state_digest(sampler: Sampler) -> str:
    """A short fingerprint of the sampler's state, to check all processes agree."""
    state = json.dumps(sampler.state_dict(), sort_keys=True, default=str)
    return hashlib.sha1(state.encode()).hexdigest()[:16]


def index_by_id(examples: Sequence[dict]) -> dict[str, int]:
    """Each example's position by its ``id``. Samplers keep their evidence per id, so a repeated id would
    silently merge two examples: it is an error naming both positions (``rlcs.data.load_examples`` already
    refuses it for data files, with file and row numbers; this catches examples built in code)."""
    index: dict[str, int] = {}
    for position, example in enumerate(examples):
        first = index.setdefault(example["id"], position)
        if first != position:
            raise ValueError(f"examples {first + 1} and {position + 1} have the same id {example['id']!r}; "
                             "ids must be unique")
    return index
