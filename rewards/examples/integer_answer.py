"""A custom reward in ten lines: the boxed answer must be a plain integer equal to the ground truth.

Stricter than ``numeric`` ("43.0" scores 0 here), for counting tasks where a
model could otherwise hedge with decimals. Used in a recipe as
``{verifier: rewards.examples.integer_answer:integer_answer}`` or
``{verifier: rewards/examples/integer_answer.py:integer_answer}``.
"""

import re

from rewards import extract_answer


def integer_answer(completion: str, example: dict, allow_sign: bool = True) -> float | None:
    if not re.fullmatch(r"-?\d+", str(example["answer"]).strip()):
        return None  # not applicable: this example's answer is not an integer
    answer = extract_answer(completion).answer
    pattern = r"[+-]?\d+" if allow_sign else r"\d+"
    if answer is None or not re.fullmatch(pattern, answer):
        return 0.0
    return float(int(answer) == int(example["answer"]))
