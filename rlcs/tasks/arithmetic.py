"""Multi-digit addition, subtraction and multiplication worked column by column."""

from __future__ import annotations

import random

# level -> (digits of each operand, operations allowed)
LEVEL_SPEC = {
    1: (1, "+-"),
    2: (2, "+-"),
    3: (3, "+-*"),
    4: (4, "+-*"),
}


def make(rng: random.Random, level: int):
    from rlcs.tasks import Problem

    digits, ops = LEVEL_SPEC[level]
    op = rng.choice(ops)
    a = _number(rng, digits)
    if op == "*":
        b = _number(rng, max(1, digits - 2))  # 3-digit x 1-digit, 4-digit x 2-digit
        steps, result = _multiply(a, b)
    else:
        b = _number(rng, digits)
        steps, result = (_add(a, b) if op == "+" else _subtract(a, b))
    expression = f"{a} {op} {b}"
    steps = [f"Compute {expression}.", *steps, f"So {expression} = {result}."]
    return Problem("arithmetic", level, f"What is {expression}?", str(result), tuple(steps), f"{expression} = ")


def _number(rng: random.Random, digits: int) -> int:
    low = 0 if digits == 1 else 10 ** (digits - 1)
    return rng.randint(low, 10**digits - 1)


def _add(a: int, b: int) -> tuple[list[str], int]:
    steps, carry = [], 0
    da, db = str(a)[::-1], str(b)[::-1]
    out = []
    for i in range(max(len(da), len(db))):
        x = int(da[i]) if i < len(da) else 0
        y = int(db[i]) if i < len(db) else 0
        total = x + y + carry
        term = f"{x} + {y}" + (f" + {carry}" if carry else "")
        carry, digit = divmod(total, 10)
        out.append(str(digit))
        steps.append(f"{term} = {total}, write {digit}" + (f" carry {carry}" if carry else ""))
    if carry:
        out.append(str(carry))
        steps.append(f"write the carry {carry}")
    return steps, int("".join(reversed(out)))


def _subtract(a: int, b: int) -> tuple[list[str], int]:
    if a < b:
        steps, diff = _subtract(b, a)
        return [f"{a} is less than {b}, so compute {b} - {a} and negate.", *steps], -diff
    steps, borrow = [], 0
    da, db = str(a)[::-1], str(b)[::-1]
    out = []
    for i in range(len(da)):
        x = int(da[i]) - borrow
        y = int(db[i]) if i < len(db) else 0
        term = f"{da[i]} - {borrow}" if borrow else da[i]
        if x < y:
            steps.append(f"{term} is less than {y}, borrow: {x + 10} - {y} = {x + 10 - y}")
            out.append(str(x + 10 - y))
            borrow = 1
        else:
            steps.append(f"{term} - {y} = {x - y}")
            out.append(str(x - y))
            borrow = 0
    return steps, int("".join(reversed(out)))


def _multiply(a: int, b: int) -> tuple[list[str], int]:
    steps, partials = [], []
    for place, digit in enumerate(reversed(str(b))):
        partial = a * int(digit) * 10**place
        shift = f" shifted by {place}" if place else ""
        steps.append(f"{a} * {digit}{shift} = {partial}")
        partials.append(partial)
    total = partials[0]
    for partial in partials[1:]:
        add_steps, new_total = _add(total, partial)
        steps += [f"Add {total} + {partial}:", *add_steps, f"{total} + {partial} = {new_total}"]
        total = new_total
    return steps, total
