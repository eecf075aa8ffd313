"""``ocr``: character-level similarity, ``1 - edit_distance / max(len)``, whitespace removed.

Rule (GLM-4.1V-Thinking's OCR reward): delete all whitespace from both strings,
then score one minus the Levenshtein distance over the longer length. Both
empty: 1.0. No box: 0.0. Unlike ``numeric``, "43" and "43.0" differ here.
"""

from __future__ import annotations

from collections.abc import Mapping

from rewards.extract import extract_answer
from rewards.registry import register


def edit_distance(a: str, b: str) -> int:
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, start=1):
        current = [i]
        for j, cb in enumerate(b, start=1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ca != cb)))
        previous = current
    return previous[-1]


def similarity(prediction: str, truth: str) -> float:
    prediction, truth = "".join(prediction.split()), "".join(str(truth).split())
    longest = max(len(prediction), len(truth))
    return 1.0 if longest == 0 else 1.0 - edit_distance(prediction, truth) / longest


@register("ocr")
def ocr(completion: str, example: Mapping) -> float:
    answer = extract_answer(completion).answer
    return 0.0 if answer is None else similarity(answer, example["answer"])
