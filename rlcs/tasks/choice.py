"""Multiple choice: pick the option that is largest, smallest, or equals a sum."""

from __future__ import annotations

import random

LETTERS = "ABCDE"
# level -> (number of options, smallest value, largest value); level 1 spans 0-30, not the digits, so
# that it has thousands of distinct prompts rather than the 90 pairs of two digits
LEVEL_SPEC = {1: (2, 0, 30), 2: (3, 10, 99), 3: (4, 10, 99), 4: (5, 100, 999)}


def make(rng: random.Random, level: int):
    from rlcs.tasks import Problem

    n_options, low, high = LEVEL_SPEC[level]
    values = rng.sample(range(low, high + 1), n_options)
    letters = LETTERS[:n_options]
    options = " ".join(f"({letter}) {value}" for letter, value in zip(letters, values))
    kind = rng.choice(["largest", "smallest", "sum"])
    if kind == "sum":
        target_index = rng.randrange(n_options)
        target = values[target_index]
        first = rng.randint(0, target)
        question = f"Which option equals {first} + {target - first}?"
        steps = [f"{first} + {target - first} = {target}."]
        steps += [
            f"({letter}) {value} {'matches' if value == target else 'does not match'}."
            for letter, value in zip(letters, values)
        ]
        best = target_index
    else:
        better = (lambda v, w: v > w) if kind == "largest" else (lambda v, w: v < w)
        comparative = {"largest": "larger", "smallest": "smaller"}[kind]
        best = 0
        steps = [f"Start with ({letters[0]}) {values[0]}."]
        for i in range(1, n_options):
            if better(values[i], values[best]):
                steps.append(f"({letters[i]}) {values[i]} is {comparative} than {values[best]}, keep ({letters[i]}).")
                best = i
            else:
                steps.append(
                    f"({letters[i]}) {values[i]} is not {comparative} than {values[best]}, keep ({letters[best]})."
                )
        question = f"Which option is the {kind}?"
    steps.append(f"The answer is ({letters[best]}).")
    prompt = f"{question} {options}"
    return Problem("choice", level, prompt, letters[best], tuple(steps))
