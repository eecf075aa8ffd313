"""Pull the one verifiable answer out of a completion.

The format (GLM-4.1V-Thinking): reasoning in ``<think>…</think>``, then
``<answer>…</answer>`` containing exactly one ``<|begin_of_box|>X<|end_of_box|>``.
Only X is compared. Anything else (no box, several boxes, ``\\boxed{``, tags
nested inside the answer, an unclosed answer) yields no answer and a reason,
which verifiers turn into the minimum reward.
"""

from __future__ import annotations

from dataclasses import dataclass

BOX_OPEN, BOX_CLOSE = "<|begin_of_box|>", "<|end_of_box|>"
THINK_OPEN, THINK_CLOSE = "<think>", "</think>"
ANSWER_OPEN, ANSWER_CLOSE = "<answer>", "</answer>"


@dataclass(frozen=True)
class Extraction:
    answer: str | None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.answer is not None


def extract_answer(completion: str) -> Extraction:
    if completion.count(THINK_CLOSE) != 1:
        return Extraction(None, f"expected one {THINK_CLOSE}, found {completion.count(THINK_CLOSE)}")
    after_think = completion.split(THINK_CLOSE, 1)[1]
    if after_think.count(ANSWER_OPEN) != 1 or after_think.count(ANSWER_CLOSE) != 1:
        return Extraction(None, "expected one <answer>…</answer> after </think>")
    start, end = after_think.index(ANSWER_OPEN), after_think.index(ANSWER_CLOSE)
    if end < start:
        return Extraction(None, "</answer> before <answer>")
    answer_text = after_think[start + len(ANSWER_OPEN):end]
    if "\\boxed{" in answer_text:
        return Extraction(None, "\\boxed{} instead of the box tokens")
    if any(tag in answer_text for tag in (THINK_OPEN, THINK_CLOSE, ANSWER_OPEN)):
        return Extraction(None, "tags nested inside the answer")
    opens, closes = answer_text.count(BOX_OPEN), answer_text.count(BOX_CLOSE)
    if opens != 1 or closes != 1:
        return Extraction(None, f"expected exactly one box, found {opens} open / {closes} close")
    box_start, box_end = answer_text.index(BOX_OPEN), answer_text.index(BOX_CLOSE)
    if box_end < box_start:
        return Extraction(None, "box closed before it opened")
    return Extraction(answer_text[box_start + len(BOX_OPEN):box_end].strip())
