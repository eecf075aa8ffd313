"""Linear equations in one unknown with an integer solution, solved step by step."""

from __future__ import annotations

import random


def make(rng: random.Random, level: int):
    from rlcs.tasks import Problem

    if level == 1:  # x - b = c: one addition
        b = rng.randint(1, 9)
        x = rng.randint(b, b + 9)
        equation = f"x - {b} = {x - b}"
        steps = [f"Add {b} to both sides: x = {x - b} + {b} = {x}."]
    elif level == 2:  # x + b = c: count up from b to c, one step at a time
        x, b = rng.randint(1, 9), rng.randint(0, 9)
        equation = f"x + {b} = {x + b}"
        steps = [f"Count up from {b} to {x + b}."]
        steps += [f"{k}: {b + k}" for k in range(1, x + 1)]
        steps.append(f"That is {x} steps, so x = {x}.")
    elif level == 3:  # a*x + b = c
        x, a, b = rng.randint(-9, 9), rng.randint(2, 9), rng.randint(-20, 20)
        c = a * x + b
        equation = f"{a}x {_signed(b)} = {c}"
        steps = [
            f"Move {b} to the right side: {a}x = {c} - ({b}) = {c - b}.",
            f"Divide both sides by {a}: x = {c - b} / {a} = {x}.",
        ]
    else:  # a*x + b = c*x + d
        x, a = rng.randint(-9, 9), rng.randint(2, 9)
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
