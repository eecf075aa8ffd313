"""Count how often a symbol occurs in a sequence, keeping a running tally."""

from __future__ import annotations

import random

LENGTHS = {1: 4, 2: 7, 3: 10, 4: 15}
SYMBOLS = "abcd"


def make(rng: random.Random, level: int):
    from rlcs.tasks import Problem

    symbols = [rng.choice(SYMBOLS) for _ in range(LENGTHS[level])]
    target = rng.choice(SYMBOLS)
    count, steps = 0, []
    for i, s in enumerate(symbols, start=1):
        if s == target:
            count += 1
            steps.append(f"{i}: {s} is {target}, count {count}")
        else:
            steps.append(f"{i}: {s}, count {count}")
    steps.append(f"{target} appears {count} times.")
    prompt = f"How many times does {target} appear in: {' '.join(symbols)}"
    return Problem("counting", level, prompt, str(count), tuple(steps))
