"""Sums of a list of single-digit numbers, added up one item at a time with a running total.

Without the trace the model must add up to eight numbers in one go; with it,
every line is one small step (read the next item by its label, add it to the
total above), so the level is a matter of how many steps stay right.
"""

from __future__ import annotations

import random

from rlcs.tasks.listing import labelled

# level -> number of terms
TERMS = {1: 3, 2: 4, 3: 6, 4: 8}


def make(rng: random.Random, level: int):
    from rlcs.tasks import Problem

    terms = [rng.randint(0, 9) for _ in range(TERMS[level])]
    labels, lines = labelled(terms, rng)
    total, steps = 0, []
    for label, term in zip(labels, terms):
        total += term
        steps.append(f"{label}: {term}, total {total}")
    steps.append(f"The sum is {total}.")
    return Problem("arithmetic", level, f"Add up the numbers:\n{lines}", str(total), tuple(steps))
