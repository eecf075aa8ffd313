"""Linear equations in one unknown with an integer solution, solved step by step."""

from __future__ import annotations

import random


def make(rng: random.Random, level: int):
    from rlcs.tasks import Problem

    x = rng.randint(-9, 9) if level >= 3 else rng.randint(0, 9 * level)
    if level == 1:  # x + b = c
        b = rng.randint(1, 20)
        equation = f"x + {b} = {x + b}"
        steps = [f"Subtract {b} from both sides: x = {x + b} - {b} = {x}."]
    elif level == 2:  # a*x = c
        a = rng.randint(2, 9)
        equation = f"{a}x = {a * x}"
        steps = [f"Divide both sides by {a}: x = {a * x} / {a} = {x}."]
    elif level == 3:  # a*x + b = c
        a, b = rng.randint(2, 9), rng.randint(-20, 20)
        c = a * x + b
        equation = f"{a}x {_signed(b)} = {c}"
        steps = [
            f"Move {b} to the right side: {a}x = {c} - ({b}) = {c - b}.",
            f"Divide both sides by {a}: x = {c - b} / {a} = {x}.",
        ]
    else:  # a*x + b = c*x + d
        a = rng.randint(2, 9)
        c = rng.choice([k for k in range(-9, 10) if k not in (0, a)])
        b = rng.randint(-20, 20)
        d = a * x + b - c * x
        equation = f"{a}x {_signed(b)} = {c}x {_signed(d)}"
        steps = [
            f"Move {c}x to the left side: {a}x - ({c}x) = {a - c}x.",
            f"Move {b} to the right side: {d} - ({b}) = {d - b}.",
            f"Now {a - c}x = {d - b}.",
            f"Divide both sides by {a - c}: x = {d - b} / {a - c} = {x}.",
        ]
    return Problem("algebra", level, f"Solve for x: {equation}", str(x), tuple(steps), "x = ")


def _signed(value: int) -> str:
    return f"+ {value}" if value >= 0 else f"- {-value}"
