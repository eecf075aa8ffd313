"""Copy or reverse a sequence of symbols (scored later by edit distance).

Symbols are written space-separated so each is one token for any tokenizer;
the answer keeps the same spacing.
"""

from __future__ import annotations

import random
import string

LENGTHS = {1: 3, 2: 5, 3: 8, 4: 12}
SYMBOLS = string.ascii_lowercase


def make(rng: random.Random, level: int):
    from rlcs.tasks import Problem

    symbols = [rng.choice(SYMBOLS) for _ in range(LENGTHS[level])]
    reverse = rng.random() < 0.5
    text = " ".join(symbols)
    if reverse:
        out = symbols[::-1]
        steps = ["Read the symbols from the last to the first."]
        steps += [f"position {len(symbols) - i}: {s}" for i, s in enumerate(out)]
        prompt = f"Reverse the sequence: {text}"
    else:
        out = symbols
        steps = ["Read the symbols from the first to the last."]
        steps += [f"position {i + 1}: {s}" for i, s in enumerate(out)]
        prompt = f"Copy the sequence: {text}"
    return Problem("transcription", level, prompt, " ".join(out), tuple(steps))
