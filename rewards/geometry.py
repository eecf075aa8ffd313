"""Boxes and points read out of answer text, and the overlap maths the visual verifiers share."""

from __future__ import annotations

import math
import re

_NUMBER = r"-?\d+(?:\.\d+)?"
_BOX = re.compile(rf"[\[(]\s*({_NUMBER})\s*,\s*({_NUMBER})\s*,\s*({_NUMBER})\s*,\s*({_NUMBER})\s*[\])]")
_POINT = re.compile(rf"[\[(]\s*({_NUMBER})\s*,\s*({_NUMBER})\s*[\])]")

Box = tuple[float, float, float, float]


def parse_boxes(text: str) -> list[Box]:
    """Every ``[x1, y1, x2, y2]`` (or parenthesised) group in the text, corners ordered."""
    boxes = []
    for match in _BOX.finditer(text):
        x1, y1, x2, y2 = (float(v) for v in match.groups())
        boxes.append((min(x1, x2), min(y1, y2), max(x1, x2), max(y1, y2)))
    return boxes


def parse_point(text: str) -> tuple[float, float] | None:
    match = _POINT.search(text)
    return (float(match.group(1)), float(match.group(2))) if match else None


def iou(a: Box, b: Box) -> float:
    width = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    height = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = width * height
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def matched_pairs(predicted: list[Box], truth: list[Box], threshold: float) -> int:
    """How many ground-truth boxes are matched one-to-one by a predicted box with IoU above ``threshold``
    (greedy on IoU, highest first: each box is used at most once on either side)."""
    pairs = sorted(((iou(p, t), i, j) for i, p in enumerate(predicted) for j, t in enumerate(truth)), reverse=True)
    used_p, used_t = set(), set()
    for overlap, i, j in pairs:
        if overlap <= threshold:
            break
        if i not in used_p and j not in used_t:
            used_p.add(i)
            used_t.add(j)
    return len(used_t)


def distance(a: tuple[float, float], b: tuple[float, float]) -> float:
    return math.hypot(a[0] - b[0], a[1] - b[1])
