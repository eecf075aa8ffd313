"""Copy or reverse a list of symbols, reading it item by item (scored by edit distance).

The trace reads the items by their labels, in the order the answer needs them,
so the answer is assembled from the trace rather than recalled in one go.
Symbols are single letters, so each is one token for any tokenizer; the answer
writes them space-separated.
"""

from __future__ import annotations

import random

from rlcs.tasks.listing import labelled

LENGTHS = {1: 3, 2: 5, 3: 8, 4: 12}
SYMBOLS = "abcdefgh"


def make(rng: random.Random, level: int):
    from rlcs.tasks import Problem

    symbols = [rng.choice(SYMBOLS) for _ in range(LENGTHS[level])]
    labels, lines = labelled(symbols, rng)
    reverse = rng.random() < 0.5
    order = list(zip(labels, symbols))[::-1] if reverse else list(zip(labels, symbols))
    steps = [f"{label}: {symbol}" for label, symbol in order]
    prompt = f"{'Reverse' if reverse else 'Copy'} the list:\n{lines}"
    return Problem("transcription", level, prompt, " ".join(s for _, s in order), tuple(steps))
