"""Drills for the pretraining corpus: the small skills every task's steps are made of.

A held-out problem is new as a whole, but each of its steps ("19 + 8",
"12 - 5", "47 is larger than 38") is a fact a pretrained model has met
before, the way a real model has read arithmetic tables. Lookup drills
practise the other skill every list task needs: reading an item by its label
("K: 5" written again further down). In a task trace one token in five or so is
such a read; in a lookup drill every other token is. Drills never contain a
task prompt, so they cannot leak a held-out item.
"""

from __future__ import annotations

import random
from string import ascii_lowercase, ascii_uppercase, digits

LABELS = list(ascii_uppercase)
VALUES = list(digits) + list(ascii_lowercase[:8])


def facts(rng: random.Random) -> list[str]:
    """One of each fact family, drawn at random."""
    a, b = rng.randint(0, 90), rng.randint(0, 9)
    small, other = rng.randint(0, 9), rng.randint(0, 9)
    left, right = rng.sample(range(0, rng.choice([10, 100, 1000])), 2)
    bigger = "larger" if left > right else "smaller"
    factor, multiple = rng.randint(2, 9), rng.randint(-9, 9)
    return [
        f"{a} + {b} = {a + b}",
        f"{small} + {other} = {small + other}",
        f"{small + other} - {other} = {small}",
        f"{left} is {bigger} than {right}",
        f"{factor} * {multiple} = {factor * multiple}",
    ]


def lookup_document(rng: random.Random) -> str:
    """A labelled list, then every item again by its label in a shuffled order."""
    labels = rng.sample(LABELS, rng.randint(3, 15))
    values = [rng.choice(VALUES) for _ in labels]
    items = list(zip(labels, values))
    reads = items[:]
    rng.shuffle(reads)
    return ("List:\n" + "\n".join(f"{label}: {value}" for label, value in items)
            + "\nAgain:\n" + "\n".join(f"{label}: {value}" for label, value in reads))


def document(rng: random.Random, lines: int = 24) -> str:
    drawn: list[str] = []
    while len(drawn) < lines:
        drawn += facts(rng)
    rng.shuffle(drawn)
    return "Facts:\n" + "\n".join(drawn[:lines])
