"""``math``: symbolic and numeric equivalence of the boxed answer and the ground truth.

Rule: strip a currency sign and a trailing unit from a known list (``12 cm`` ->
``12``, ``\\text{cm}`` too); where both sides name a unit, the units must
agree (``5 m`` is not ``5 cm``). A percent (``50%`` or ``50\\%``) equals its
number or its fraction (50 or 0.5). If both sides are plain numbers (integers,
decimals, ``a/b``, ``1,234``, ``1e3``), integers compare exactly at any size and
the rest with relative tolerance ``rel_tol`` (default 1e-6, GLM-4.1V's math
tolerance): "43" equals "43.0", "1/2" equals "0.5". Plain words compare as words
("listen" is not "silent", which as symbols would be the same product).
Otherwise both are parsed as LaTeX by math-verify (``\\frac{1}{2}``,
``\\sqrt{4}``, ``x^2+1``) and compared symbolically. Only math-verify's LaTeX
path is used: it parses with a grammar, while its plain-expression path goes
through sympy's ``parse_expr``, which evaluates Python; model text is never
evaluated. Run it in the reward workers (the default), which bound its time.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from decimal import Decimal
from fractions import Fraction

from rewards.extract import extract_answer
from rewards.numeric import close, parse_number
from rewards.registry import register

UNITS = ("cm", "mm", "km", "m", "kg", "g", "mg", "l", "ml", "s", "sec", "seconds", "min", "minutes", "h",
         "hours", "days", "years", "degrees", "°", "%", "units", "dollars", "meters", "inches", "feet")
_UNIT_ALIASES = {"sec": "s", "seconds": "s", "minutes": "min", "hours": "h", "meters": "m", "°": "degrees"}
_LATEX_UNIT = re.compile(r"\s*\\(?:text|mathrm|mbox)\{[^{}]*\}\s*$")
_PLAIN_UNIT = re.compile(r"^(.*?\d)\s*(?:" + "|".join(re.escape(u) for u in UNITS) + r")\.?$", re.I)


class _TimeoutNoticeFilter(logging.Filter):
    """math-verify warns in every process that its own timeout is off. It is off on purpose: its
    signal-based timeout works only in a main thread, and the verifier pool enforces the wall-clock limit
    (``reward_workers.timeout_s``). Other math-verify messages pass."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "Timeout is disabled" not in record.getMessage()


for _name in ("math_verify.grader", "math_verify.parser"):
    logging.getLogger(_name).addFilter(_TimeoutNoticeFilter())


_LATEX_TEXT = re.compile(r"\\(?:text|mathrm|mbox)\{([^{}]*)\}")
_PERCENT = re.compile(r"^(.*?\d)\s*\\?%$")
_SCIENTIFIC = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)[eE][+-]?\d+$")
_WORD = re.compile(r"^[A-Za-z]{3,}(?:[ -][A-Za-z]+)*$")  # "xy" stays algebra; "listen" is a word


def split_unit(text: str) -> tuple[str, str | None]:
    """(the answer without a currency sign and trailing unit, the unit's canonical name or None)."""
    text = text.strip().removeprefix("\\$").removeprefix("$").strip()
    if (latex := _LATEX_UNIT.search(text)) and text[:latex.start()].strip():
        unit = _LATEX_TEXT.search(latex.group(0)).group(1).strip()
        if unit and not any(ch.isdigit() for ch in unit):  # \text{3} is a number, not a unit
            return text[:latex.start()].strip(), _canonical_unit(unit)
    text = _LATEX_TEXT.sub(lambda m: m.group(1), text).strip()  # \text{3} -> 3
    if _PERCENT.match(text):
        return text, None  # a percent is a value, read by _values
    match = _PLAIN_UNIT.match(text)
    if match:
        return match.group(1), _canonical_unit(text[len(match.group(1)):].strip().rstrip("."))
    return text, None


def _canonical_unit(unit: str) -> str:
    return _UNIT_ALIASES.get(unit.lower(), unit.lower())


def _number(text: str) -> Fraction | None:
    if _SCIENTIFIC.match(text.strip()):
        return Fraction(Decimal(text.strip()))
    return parse_number(text)


def _values(text: str) -> list[Fraction]:
    """What a plain-number answer may mean: its value, and for a percent also the fraction (50% -> 50, 0.5)."""
    if match := _PERCENT.match(text):
        value = _number(match.group(1))
        return [] if value is None else [value, value / 100]
    value = _number(text)
    return [] if value is None else [value]


def _numbers_match(a: Fraction, g: Fraction, rel_tol: float) -> bool:
    if a.denominator == 1 and g.denominator == 1:
        return a == g  # integers exactly, at any size (no float overflow, no tolerance)
    return close(a, g, rel_tol)


def _latex(text: str):
    from math_verify import LatexExtractionConfig, parse

    return parse(f"${text}$", extraction_config=[LatexExtractionConfig()], parsing_timeout=None)


@register("math")
def math_reward(completion: str, example: Mapping, rel_tol: float = 1e-6) -> float:
    answer = extract_answer(completion).answer
    if answer is None or not answer.strip():
        return 0.0
    (predicted, answer_unit), (truth, truth_unit) = split_unit(answer), split_unit(str(example["answer"]))
    if answer_unit and truth_unit and answer_unit != truth_unit:
        return 0.0  # 5 m is not 5 cm
    a, g = _values(predicted), _values(truth)
    if a and g:
        return float(any(_numbers_match(x, y, rel_tol) for x in a for y in g))
    if _WORD.match(predicted) or _WORD.match(truth):  # words are words, not products of symbols
        return float(" ".join(predicted.lower().split()) == " ".join(truth.lower().split()))
    from math_verify import verify

    gold, target = _latex(truth), _latex(predicted)
    if not gold or not target:
        return 0.0
    return float(verify(gold, target, timeout_seconds=None))
