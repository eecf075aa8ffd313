"""How list-reading tasks write their input: one labelled item per line ("A: 5").

A trace line that reads an item repeats its label ("A: 5, total 5"), so the
model finds the item by what it is called, not by counting positions: a tiny
decoder with rotary positions learns that lookup (an induction pattern) far
more reliably than "the k-th item". Labels are capital letters, so a list
holds at most 26 items.
"""

from __future__ import annotations

from string import ascii_uppercase as LABELS


def labelled(items: list) -> tuple[list[str], str]:
    """(labels, the list as prompt lines)."""
    if len(items) > len(LABELS):
        raise ValueError(f"a list holds at most {len(LABELS)} items, got {len(items)}")
    labels = list(LABELS[: len(items)])
    return labels, "\n".join(f"{label}: {item}" for label, item in zip(labels, items))
