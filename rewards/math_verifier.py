"""``math``: symbolic and numeric equivalence of the boxed answer and the ground truth.

Rule: Unicode maths is read as LaTeX (``−3``, ``∞``, ``½``, ``x²``, ``√2``,
``×``). Strip a currency sign and a trailing unit from a known list (``12 cm``
-> ``12``, ``\\text{cm}`` too); where both sides name a unit, the units must
agree (``5 m`` is not ``5 cm``; no conversion). The same text (spaces aside) is
the same answer. A percent (``50%`` or ``50\\%``) equals its number or its
fraction (50 or 0.5). If both sides are one number as people write it (integers,
decimals, ``.5``, ``a/b``, ``\\frac{a}{b}``, thousands separated by ``,``, a
space, ``\\,`` or ``{,}``, ``1e3`` and ``1.5\\times10^{3}``, mixed ``1 1/2`` and
``1\\frac{1}{2}``, repeating ``0.\\overline{3}``), integers compare exactly at
any size and the rest with relative tolerance ``rel_tol`` (default 1e-6,
GLM-4.1V's math tolerance), in exact arithmetic: "43" equals "43.0", "1/2"
equals "0.5", "0.6667" is not "2/3". Plain words compare as words ("listen" is
not "silent", which as symbols would be the same product). Otherwise both are
parsed as LaTeX by math-verify (``\\sqrt{4}``, ``x^2+1``, intervals, sets,
``x = 3``) and compared symbolically; a number math-verify would misread
(``1e3`` as 1·e³) is handed to it as its exact value. Only math-verify's LaTeX
path is used: it parses with a grammar, while its plain-expression path goes
through sympy's ``parse_expr``, which evaluates Python; model text is never
evaluated. Answers that would make sympy build astronomically large numbers
(``10^{10^{10}}``, exponents of seven digits, ``100000!``) score 0 unless they
are the ground truth's own text; anything else slow is bounded by the reward
workers (the default), which kill a call at ``reward_workers.timeout_s``.
"""

from __future__ import annotations

import logging
import re
import unicodedata
from collections.abc import Mapping
from fractions import Fraction

from rewards.extract import extract_answer
from rewards.numeric import parse_number
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
_WORD = re.compile(r"^[A-Za-z]{3,}(?:[ -][A-Za-z]+)*$")  # "xy" stays algebra; "listen" is a word
_MAX_EXPONENT = 10_000  # 1e10000 is exact; beyond, building the integer would stall the verifier
# how people write one number: each maps text to its exact value
_SCIENTIFIC = re.compile(r"^([+-]?(?:\d+\.?\d*|\.\d+))(?:[eE]|\s*(?:\\times|\\cdot|\*)\s*10\s*\^)\s*\{?([+-]?\d+)\}?$")
_GROUPED = re.compile(r"^([+-]?\d{1,3})((?:(?:\\,|\\ |\\;|~|\{,\}| )\d{3})+)(\.\d+)?$")  # 1 000, 1\,000, 1{,}000
_GROUP_MARK = re.compile(r"\\,|\\ |\\;|~|\{,\}| ")
_FRAC = re.compile(r"^([+-]?)(?:(\d+)\s*)?\\[dt]?frac\s*\{\s*([+-]?\d+)\s*\}\s*\{\s*([+-]?\d+)\s*\}$")  # 1\frac{1}{2}
_MIXED = re.compile(r"^([+-]?)(\d+)\s+(\d+)\s*/\s*(\d+)$")  # 1 1/2
_REPEATING = re.compile(r"^([+-]?)(\d*)\.(\d*)\\overline\s*\{(\d+)\}$")  # 0.\overline{3}
_SIMPLE = re.compile(r"^[+-]?(?:\d+\.?\d*|\.\d+)$")  # math-verify reads these right; it also rounds to their digits
# answers that would make sympy build astronomically large numbers (a wall-clock limit is the only other bound)
_HUGE = re.compile(r"\^\s*\{?\s*\d+\s*\^\s*\{?\s*\d|\^\s*\{?\s*[+-]?\d{7,}|\d{6,}\s*!|\d[eE][+-]?\d{6,}")
# Unicode maths as LaTeX: − ∞ · × π, spaces, ½ (a leading space keeps 1½ a mixed number), x² -> x^{2}, √2
_UNICODE = str.maketrans({"\u2212": "-", "\u2013": "-", "\u221e": "\\infty ", "\u00b7": "\\cdot ",
                          "\u00d7": "\\times ", "\u03c0": "\\pi ", "\u2009": " ", "\u202f": " ", "\u00a0": " ",
                          **{c: " " + unicodedata.normalize("NFKC", c).replace("\u2044", "/")
                             for c in "½⅓⅔¼¾⅕⅖⅗⅘⅙⅚⅛⅜⅝⅞"}})
_SUPERSCRIPT = re.compile("[⁰¹²³⁴⁵⁶⁷⁸⁹⁺⁻]+")
_FROM_SUPERSCRIPT = str.maketrans("⁰¹²³⁴⁵⁶⁷⁸⁹⁺⁻", "0123456789+-")
_ROOT = re.compile(r"\u221a\s*(\d+(?:\.\d+)?|[A-Za-z]|\([^()]*\))")


def _latex_unicode(text: str) -> str:
    text = _SUPERSCRIPT.sub(lambda m: "^{" + m.group(0).translate(_FROM_SUPERSCRIPT) + "}", text.translate(_UNICODE))
    return _ROOT.sub(r"\\sqrt{\1}", text)


def split_unit(text: str) -> tuple[str, str | None]:
    """(the answer without a currency sign and trailing unit, the unit's canonical name or None)."""
    text = _latex_unicode(text).strip()
    text = text.removeprefix("\\$").removeprefix("$").strip()
    if (latex := _LATEX_UNIT.search(text)) and text[:latex.start()].strip():
        unit = _LATEX_TEXT.search(latex.group(0)).group(1).strip()
        if unit and not any(ch.isdigit() for ch in unit):  # \text{3} is a number, not a unit
            return text[:latex.start()].strip().removesuffix("\\,").strip(), _canonical_unit(unit)
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
    """The exact value of one number as people write it, or None. Nothing is evaluated: regular expressions,
    then ``int``/``Fraction`` on digits."""
    text = text.strip()
    if match := _GROUPED.match(text):
        text = match.group(1) + _GROUP_MARK.sub("", match.group(2)) + (match.group(3) or "")
    if match := _SCIENTIFIC.match(text):
        exponent = int(match.group(2))
        return Fraction(match.group(1)) * Fraction(10) ** exponent if abs(exponent) <= _MAX_EXPONENT else None
    if match := _FRAC.match(text):
        sign, whole, numerator, denominator = match.groups()
        if int(denominator) == 0:
            return None
        value = int(whole or 0) + Fraction(int(numerator), int(denominator))
        return -value if sign == "-" else value
    if match := _MIXED.match(text):
        sign, whole, numerator, denominator = match.groups()
        value = int(whole) + Fraction(int(numerator), int(denominator)) if int(denominator) else None
        return -value if value is not None and sign == "-" else value
    if match := _REPEATING.match(text):
        sign, whole, fixed, repeating = match.groups()
        value = int(whole or 0) + Fraction(int(fixed or 0), 10 ** len(fixed)) + Fraction(
            int(repeating), 10 ** len(fixed) * (10 ** len(repeating) - 1))
        return -value if sign == "-" else value
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
    # |a - g| / (|g| + 1e-6) < rel_tol, in exact arithmetic: a float overflows past 1e308
    return abs(a - g) < Fraction(rel_tol) * (abs(g) + Fraction(1, 10**6))


def _for_math_verify(text: str) -> str:
    """Text math-verify reads as meant: a number written in a way it misreads (1e3 as 1·e³, 1 000, mixed or
    repeating) becomes its exact value in LaTeX; a plain decimal stays, as math-verify rounds to its digits."""
    value = _number(text)
    if value is None or _SIMPLE.match(text.strip()):
        return text
    sign, value = ("-" if value < 0 else ""), abs(value)
    if value.denominator == 1:
        return f"{sign}{value.numerator}"
    return f"{sign}\\frac{{{value.numerator}}}{{{value.denominator}}}"


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
    if "".join(predicted.split()) == "".join(truth.split()):
        return 1.0  # the same text is the same answer, however hard it would be to evaluate
    a, g = _values(predicted), _values(truth)
    if a and g:
        return float(any(_numbers_match(x, y, rel_tol) for x in a for y in g))
    if _WORD.match(predicted) or _WORD.match(truth):  # words are words, not products of symbols
        return float(" ".join(predicted.lower().split()) == " ".join(truth.lower().split()))
    if _HUGE.search(predicted) or _HUGE.search(truth):
        return 0.0  # e.g. 10^{10^{10}}: sympy would try to build the number
    from math_verify import verify

    gold, target = _latex(_for_math_verify(truth)), _latex(_for_math_verify(predicted))
    if not gold or not target:
        return 0.0
    return float(verify(gold, target, timeout_seconds=None))
