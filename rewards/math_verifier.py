"""``math``: symbolic and numeric equivalence of the boxed answer and the ground truth.

Rule: strip a currency sign and a trailing unit from a known list (``12 cm`` ->
``12``, ``\\text{cm}`` too); if both sides are plain numbers (integers,
decimals, ``a/b``, ``1,234``), compare with relative tolerance ``rel_tol``
(default 1e-6, GLM-4.1V's math tolerance): "43" equals "43.0", "1/2" equals
"0.5". Otherwise both are parsed as LaTeX by math-verify (``\\frac{1}{2}``,
``\\sqrt{4}``, ``x^2+1``) and compared symbolically. Only math-verify's LaTeX
path is used: it parses with a grammar, while its plain-expression path goes
through sympy's ``parse_expr``, which evaluates Python; model text is never
evaluated. Run it in the reward workers (the default), which bound its time.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping

from rewards.extract import extract_answer
from rewards.numeric import close, parse_number
from rewards.registry import register

UNITS = ("cm", "mm", "km", "m", "kg", "g", "mg", "l", "ml", "s", "sec", "seconds", "min", "minutes", "h",
         "hours", "days", "years", "degrees", "°", "%", "units", "dollars", "meters", "inches", "feet")
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


def strip_units(text: str) -> str:
    text = text.strip().removeprefix("\\$").removeprefix("$").strip()
    text = _LATEX_UNIT.sub("", text)
    match = _PLAIN_UNIT.match(text)
    return match.group(1) if match else text


def _latex(text: str):
    from math_verify import LatexExtractionConfig, parse

    return parse(f"${text}$", extraction_config=[LatexExtractionConfig()], parsing_timeout=None)


@register("math")
def math_reward(completion: str, example: Mapping, rel_tol: float = 1e-6) -> float:
    answer = extract_answer(completion).answer
    if answer is None or not answer.strip():
        return 0.0
    predicted, truth = strip_units(answer), strip_units(str(example["answer"]))
    a, g = parse_number(predicted), parse_number(truth)
    if a is not None and g is not None:
        return float(close(a, g, rel_tol))
    from math_verify import verify

    gold, target = _latex(truth), _latex(predicted)
    if not gold or not target:
        return 0.0
    return float(verify(gold, target, timeout_seconds=None))
