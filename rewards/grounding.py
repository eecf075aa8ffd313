"""``grounding``: share of ground-truth boxes found, one-to-one, with IoU above a threshold.

Rule (GLM-4.1V-Thinking): the answer lists boxes ``[x1, y1, x2, y2]``; each
ground-truth box may be matched by at most one predicted box and vice versa
(greedy by IoU); reward = matched ground-truth boxes / all ground-truth boxes.
Extra predicted boxes cost nothing directly but cannot match twice. The example's
``answer`` is a list of boxes (or their text). Threshold ``iou_threshold`` (0.5).
"""

from __future__ import annotations

from collections.abc import Mapping

from rewards.extract import extract_answer
from rewards.geometry import matched_share, parse_boxes
from rewards.registry import register


@register("grounding")
def grounding(completion: str, example: Mapping, iou_threshold: float = 0.5) -> float:
    answer = extract_answer(completion).answer
    if answer is None:
        return 0.0
    truth = example["answer"]
    truth_boxes = parse_boxes(truth if isinstance(truth, str) else str([list(b) for b in truth]))
    return matched_share(parse_boxes(answer), truth_boxes, iou_threshold)
