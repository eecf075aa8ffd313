"""``gui``: a GUI action scored as the product of its parts.

Rule (GLM-4.1V-Thinking): the answer is a JSON object ``{"action": ..., ...}``;
the ground truth has the same shape. Reward = action-type match (0 or 1)
x text similarity (``1 - edit_distance / max(len)``, when the truth has "text")
x box IoU (when the truth has "box") x click score (when the truth has
"point": distance d in pixels, ``1 - 0.2 * d / 20`` for d <= 20, else
``max(0, 1 - d / 50)``). A missing field the truth needs scores 0.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

from rewards.extract import extract_answer
from rewards.geometry import distance, iou, parse_boxes, parse_point
from rewards.ocr import similarity
from rewards.registry import register


def click_score(d: float) -> float:
    return 1 - 0.2 * d / 20 if d <= 20 else max(0.0, 1 - d / 50)


@register("gui")
def gui(completion: str, example: Mapping) -> float:
    answer = extract_answer(completion).answer
    truth = example["answer"] if isinstance(example["answer"], Mapping) else json.loads(example["answer"])
    try:
        predicted = json.loads(answer) if answer is not None else None
    except json.JSONDecodeError:
        return 0.0
    if not isinstance(predicted, dict) or str(predicted.get("action", "")).lower() != str(truth["action"]).lower():
        return 0.0
    score = 1.0
    if "text" in truth:
        score *= similarity(str(predicted.get("text", "")), str(truth["text"]))
    if "box" in truth:
        boxes = parse_boxes(json.dumps(predicted.get("box", "")))
        score *= iou(boxes[0], parse_boxes(json.dumps(truth["box"]))[0]) if boxes else 0.0
    if "point" in truth:
        point = parse_point(json.dumps(predicted.get("point", "")))
        score *= click_score(distance(point, tuple(truth["point"]))) if point else 0.0
    return score
