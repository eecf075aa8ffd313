"""``numeric``: the boxed answer is the same number as the ground truth (charts and tables).

Rule (GLM-4.1V-Thinking's chart reward): parse both as numbers (integers,
decimals, ``a/b`` fractions, thousands separators ``1,234``, a leading ``+``);
equal when ``|a - g| / (|g| + 1e-6) < rel_tol`` (default 2.5e-2), except that a
ground truth that is an integer between 1000 and 3000 (a year) must match
exactly (``exact_years``). Text that is not a number scores 0. Nothing is
evaluated: parsing is a regular expression plus ``fractions.Fraction``. For
exact arithmetic use ``math`` (tolerance 1e-6).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from fractions import Fraction

from rewards.extract import extract_answer
from rewards.registry import register

_NUMBER = re.compile(r"^[+-]?(\d{1,3}(,\d{3})+|\d+)?(\.\d+)?$")
_FRACTION = re.compile(r"^([+-]?\d+)\s*/\s*([+-]?\d+)$")


def parse_number(text: str) -> Fraction | None:
    text = str(text).strip()
    if m := _FRACTION.match(text):
        numerator, denominator = int(m.group(1)), int(m.group(2))
        return Fraction(numerator, denominator) if denominator else None
    if not text or not _NUMBER.match(text) or text in {"+", "-", "."}:
        return None
    return Fraction(text.replace(",", ""))


def close(value: Fraction, target: Fraction, rel_tol: float) -> bool:
    return abs(float(value - target)) / (abs(float(target)) + 1e-6) < rel_tol


def is_year(value: Fraction) -> bool:
    return value.denominator == 1 and 1000 <= value <= 3000


@register("numeric")
def numeric(completion: str, example: Mapping, rel_tol: float = 2.5e-2, exact_years: bool = True) -> float:
    answer = extract_answer(completion).answer
    value = parse_number(answer) if answer is not None else None
    target = parse_number(example["answer"])
    if target is None:
        raise ValueError(f"ground truth {example['answer']!r} of {example.get('id')} is not a number")
    if value is None:
        return 0.0
    if exact_years and is_year(target):
        return float(value == target)
    return float(close(value, target, rel_tol))
