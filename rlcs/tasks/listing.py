"""How list-reading tasks write their input: one labelled item per line ("K: 5").

A trace line that reads an item repeats its label ("K: 5, total 5"), so the
model finds the item by what it is called, not by counting positions: a tiny
decoder with rotary positions learns that lookup (an induction pattern) far
more reliably than "the k-th item".

Labels are consecutive capital letters from a random start ("K", "L", "M"):
the next label is always the alphabet's next letter, but the prompts of a short
list are no longer a handful. With labels fixed at "A", "B", a two-item sum of
digits has 100 possible prompts; holding 40 out left 60 to train on, which a
tiny model memorises instead of learning to read the list, and it then failed
nearly every held-out one.
"""

from __future__ import annotations

import random
from string import ascii_uppercase as LABELS


def labelled(items: list, rng: random.Random) -> tuple[list[str], str]:
    """(labels, the list as prompt lines), labels starting at a random letter."""
    if len(items) > len(LABELS):
        raise ValueError(f"a list holds at most {len(LABELS)} items, got {len(items)}")
    start = rng.randint(0, len(LABELS) - len(items))
    labels = list(LABELS[start: start + len(items)])
    return labels, "\n".join(f"{label}: {item}" for label, item in zip(labels, items))
