"""``format``: 1.0 when the completion has the required structure, else 0.0.

Rule: exactly one ``</think>``, then one ``<answer>…</answer>`` holding exactly
one box, no ``\\boxed{``, no nested tags (``rewards.extract``). The paper found
format is best learnt in SFT and that mixing it into RL rewards can
destabilise training; it is here for recipes that want it as a weighted term.
"""

from __future__ import annotations

from collections.abc import Mapping

from rewards.extract import extract_answer
from rewards.registry import register


@register("format")
def format_reward(completion: str, example: Mapping) -> float:
    return float(extract_answer(completion).ok)
