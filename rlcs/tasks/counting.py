"""Count how often a symbol occurs in a list, keeping a running tally."""

from __future__ import annotations

import random

from rlcs.tasks.listing import labelled

LENGTHS = {1: 4, 2: 7, 3: 10, 4: 15}
SYMBOLS = "abcd"


def make(rng: random.Random, level: int):
    from rlcs.tasks import Problem

    symbols = [rng.choice(SYMBOLS) for _ in range(LENGTHS[level])]
    target = rng.choice(SYMBOLS)
    labels, lines = labelled(symbols, rng)
    count, steps = 0, []
    for label, s in zip(labels, symbols):
        if s == target:
            count += 1
            steps.append(f"{label}: {s} is {target}, count {count}")
        else:
            steps.append(f"{label}: {s}, count {count}")
    steps.append(f"{target} appears {count} times.")
    prompt = f"How many times does {target} appear in the list?\n{lines}"
    return Problem("counting", level, prompt, str(count), tuple(steps))
