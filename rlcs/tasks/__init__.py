"""The synthetic verifiable task suite.

Every domain module exposes ``make(rng, level) -> Problem``: a prompt, its
ground-truth answer and the correct step-by-step reasoning that reaches it.
``Problem`` renders itself as an RL/eval example, a long-CoT SFT trace and a
plain-text pretraining document, so all three splits share one source of truth.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from rlcs.tasks import algebra, arithmetic, choice, counting, transcription

BOX_OPEN, BOX_CLOSE = "<|begin_of_box|>", "<|end_of_box|>"
# The whole "reasoning" of an unworked trace: the answer is stated, not derived (see ``Problem.response``).
UNWORKED_REASONING = "I can see the answer without working it out."

DOMAINS = {
    "arithmetic": arithmetic.make,
    "algebra": algebra.make,
    "choice": choice.make,
    "transcription": transcription.make,
    "counting": counting.make,
}
LEVELS = (1, 2, 3, 4)


@dataclass(frozen=True)
class Problem:
    domain: str
    level: int
    prompt: str
    answer: str
    steps: tuple[str, ...]
    answer_lead: str = ""  # words before the box inside <answer>, e.g. "47 + 85 = "

    @property
    def id(self) -> str:
        return example_id(self.domain, self.prompt)

    def reasoning(self) -> str:
        return "\n".join(self.steps)

    def response(self, worked: bool = True) -> str:
        """The long-CoT response in the GLM-4.1V-Thinking format.

        ``worked=False`` gives an unworked trace: a correct answer with no steps, the hasty
        kind of trace real distilled SFT data holds next to careful ones. On multi-step
        items a model that imitates it guesses, so RL has a behaviour to improve that
        carries over to unseen items: working the problem out.
        """
        reasoning = self.reasoning() if worked else UNWORKED_REASONING
        return (
            f"<think>{reasoning}</think>"
            f"<answer>{self.answer_lead}{BOX_OPEN}{self.answer}{BOX_CLOSE}</answer>"
        )

    def example(self) -> dict:
        return {
            "id": self.id,
            "domain": self.domain,
            "level": self.level,
            "prompt": self.prompt,
            "answer": self.answer,
        }

    def sft_row(self, worked: bool = True) -> dict:
        return {**self.example(), "response": self.response(worked)}

    def document(self) -> str:
        """Plain prose for pretraining: the skills without the chat format."""
        return f"Question: {self.prompt}\nReasoning: {self.reasoning()}\nAnswer: {self.answer}"


def example_id(domain: str, prompt: str) -> str:
    """A stable id from content, so the same item keeps its id across files and runs."""
    digest = hashlib.sha1(f"{domain}\x00{prompt}".encode()).hexdigest()[:12]
    return f"{domain}-{digest}"


def make_problem(domain: str, level: int, rng: random.Random) -> Problem:
    if domain not in DOMAINS:
        raise ValueError(f"unknown task domain {domain!r}; known: {sorted(DOMAINS)}")
    if level not in LEVELS:
        raise ValueError(f"level must be one of {LEVELS}, got {level}")
    return DOMAINS[domain](rng, level)


def generate(
    count_per_level: int,
    seed: int | str,
    domains: list[str] | None = None,
    levels: tuple[int, ...] = LEVELS,
    exclude_ids: set[str] | None = None,
    make: Callable[[str, int, random.Random], Any] = make_problem,
) -> list:
    """Deterministic for a seed: ``count_per_level`` distinct problems per (domain, level).

    Duplicates and ``exclude_ids`` (e.g. the held-out split) are skipped; small
    problem spaces (1-digit sums) may yield fewer than asked, never a repeat.
    ``make``: the problem maker (``rlcs.tasks.visual.make_visual`` for the image domains).
    """
    exclude = set(exclude_ids or ())
    problems: list[Problem] = []
    for domain in domains or list(DOMAINS):
        for level in levels:
            rng = random.Random(f"{seed}:{domain}:{level}")
            seen: set[str] = set()
            attempts = 0
            while len(seen) < count_per_level and attempts < 20 * count_per_level:
                attempts += 1
                problem = make(domain, level, rng)
                if problem.id in seen or problem.id in exclude:
                    continue
                seen.add(problem.id)
                problems.append(problem)
    return problems
