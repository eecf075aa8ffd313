"""``exact``: the boxed answer equals the ground truth after whitespace normalisation.

Rule: collapse runs of whitespace, strip; optionally case-insensitive. 1.0 or 0.0.
"""

from __future__ import annotations

from collections.abc import Mapping

from rewards.extract import extract_answer
from rewards.registry import register


def normalise(text: str, case_sensitive: bool = True) -> str:
    text = " ".join(str(text).split())
    return text if case_sensitive else text.lower()


@register("exact")
def exact(completion: str, example: Mapping, case_sensitive: bool = True) -> float:
    answer = extract_answer(completion).answer
    if answer is None:
        return 0.0
    return float(normalise(answer, case_sensitive) == normalise(example["answer"], case_sensitive))
