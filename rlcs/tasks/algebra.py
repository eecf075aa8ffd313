"""Linear equations in one unknown with an integer solution, solved step by step.

The unknown's letter varies and the constants of the easy levels range up to
40, so every level has thousands of distinct prompts: a held-out equation is
new, not one of a few dozen the model could have memorised. Every trace ends
by stating the unknown ("so x = 30"), so the answer restates the last step
instead of re-deriving it from the middle of an expression.
"""

from __future__ import annotations

import random

UNKNOWNS = "xyzanm"


def make(rng: random.Random, level: int):
    from rlcs.tasks import Problem

    v = rng.choice(UNKNOWNS)
    if level == 1:  # v - b = c: one addition
        b, c = rng.randint(1, 9), rng.randint(0, 40)
        x = c + b
        equation = _either_side(rng, f"{v} - {b}", str(c))
        steps = [f"Add {b} to both sides: {c} + {b} = {x}, so {v} = {x}."]
    elif level == 2:  # v + b = c: count up from b to c, one step at a time
        x, b = rng.randint(1, 9), rng.randint(0, 40)
        equation = _either_side(rng, f"{v} + {b}", str(x + b))
        steps = [f"Count up from {b} to {x + b}."]
        steps += [f"{k}: {b + k}" for k in range(1, x + 1)]
        steps.append(f"That is {x} steps, so {v} = {x}.")
    elif level == 3:  # a*v + b = c
        x, a, b = rng.randint(-9, 9), rng.randint(2, 9), rng.randint(-20, 20)
        c = a * x + b
        equation = f"{a}{v} {_signed(b)} = {c}"
        steps = [
            f"Move {b} to the right side: {a}{v} = {c} - ({b}) = {c - b}.",
            f"Divide both sides by {a}: {c - b} / {a} = {x}, so {v} = {x}.",
        ]
    else:  # a*v + b = c*v + d
        x, a = rng.randint(-9, 9), rng.randint(2, 9)
        c = rng.choice([k for k in range(-9, 10) if k not in (0, a)])
        b = rng.randint(-20, 20)
        d = a * x + b - c * x
        equation = f"{a}{v} {_signed(b)} = {c}{v} {_signed(d)}"
        steps = [
            f"Move {c}{v} to the left side: {a}{v} - ({c}{v}) = {a - c}{v}.",
            f"Move {b} to the right side: {d} - ({b}) = {d - b}.",
            f"Now {a - c}{v} = {d - b}.",
            f"Divide both sides by {a - c}: {d - b} / {a - c} = {x}, so {v} = {x}.",
        ]
    return Problem("algebra", level, f"Solve for {v}: {equation}", str(x), tuple(steps), f"{v} = ")


def _either_side(rng: random.Random, expression: str, value: str) -> str:
    return f"{expression} = {value}" if rng.random() < 0.5 else f"{value} = {expression}"


def _signed(value: int) -> str:
    return f"+ {value}" if value >= 0 else f"- {-value}"
