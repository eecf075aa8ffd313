"""``grounding``: F1 of predicted against ground-truth boxes, matched one-to-one with IoU above a threshold.

Rule: the answer lists boxes ``[x1, y1, x2, y2]``; each ground-truth box may be
matched by at most one predicted box and vice versa (greedy by IoU). With m
matches, precision m / predicted and recall m / ground truth, the reward is their
F1, 2m / (predicted + ground truth). Recall alone would let a policy spam boxes:
every extra box now lowers the reward. No boxes against no ground truth is 1.
The example's ``answer`` is a list of boxes (or their text). Threshold
``iou_threshold`` (0.5).
"""

from __future__ import annotations

from collections.abc import Mapping

from rewards.extract import extract_answer
from rewards.geometry import matched_pairs, parse_boxes
from rewards.registry import register


@register("grounding")
def grounding(completion: str, example: Mapping, iou_threshold: float = 0.5) -> float:
    answer = extract_answer(completion).answer
    if answer is None:
        return 0.0
    truth = example["answer"]
    truth_boxes = parse_boxes(truth if isinstance(truth, str) else str([list(b) for b in truth]))
    predicted = parse_boxes(answer)
    if not truth_boxes and not predicted:
        return 1.0
    return 2 * matched_pairs(predicted, truth_boxes, iou_threshold) / (len(predicted) + len(truth_boxes))
