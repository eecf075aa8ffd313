"""Rollout: G completions per picked example from the generation engine, scored by the verifiers.

Every process rolls out its share of the picked examples (``picked[rank::world]``)
and keeps the results as ``Group`` records; the outcomes every process needs (for
the sampler) are gathered by the caller.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from rlcs.chat import example_request
from rlcs.curriculum.interface import GroupOutcome
from rlcs.engine import Completion, GenerationEngine, SamplingParams


@dataclass
class Group:
    """One example's G completions on this process, with its position in the step's outcome list."""

    position: int
    example: dict
    completions: list[Completion]
    rewards: list[float]

    def outcome(self, pass_threshold: float) -> GroupOutcome:
        passes = sum(r >= pass_threshold for r in self.rewards)
        return GroupOutcome(self.example["id"], self.example["domain"], list(self.rewards), passes)


def rollout_round(picked: list[dict], offset: int, engine: GenerationEngine, router, tokenizer,
                  sampling: SamplingParams, group_size: int, rank: int, world: int) -> tuple[list[Group], float]:
    """This process's share of ``picked``, generated and scored: (groups, seconds spent scoring).
    ``offset`` is the number of groups earlier rounds of this step produced on all processes, so
    positions are global."""
    mine = picked[rank::world]
    completions = engine.generate([example_request(tokenizer, e) for e in mine], group_size, sampling)
    scoring_started = time.time()
    scores = router.score([c.text for c in completions], [mine[c.prompt_index] for c in completions])
    seconds = time.time() - scoring_started
    G = group_size
    # gathered outcomes list every process's groups in rank order, and shares differ by one when the
    # sampler picks fewer than a multiple of the processes (a data set smaller than the rollout count)
    before = sum(len(picked[r::world]) for r in range(rank))
    groups = [Group(offset + before + j, e, completions[j * G:(j + 1) * G], scores[j * G:(j + 1) * G])
              for j, e in enumerate(mine)]
    return groups, seconds
