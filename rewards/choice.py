"""``choice``: multiple choice, by letter or by the option's text.

Rule: the boxed answer is a letter (``B``, ``(B)``, ``B.``) equal to the ground
truth letter, case-insensitive; or, when the example lists ``options``
(letter -> text), the boxed text equals the correct option's text. 1.0 or 0.0.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from rewards.extract import extract_answer
from rewards.registry import register

_LETTER = re.compile(r"^\(?([A-Za-z])\)?[.:]?$")


@register("choice")
def choice(completion: str, example: Mapping) -> float:
    answer = extract_answer(completion).answer
    if answer is None:
        return 0.0
    truth = str(example["answer"]).strip().upper()
    if m := _LETTER.match(answer.strip()):
        return float(m.group(1).upper() == truth)
    options = example.get("options") or {}
    correct_text = options.get(truth)
    return float(correct_text is not None and " ".join(answer.split()) == " ".join(str(correct_text).split()))
