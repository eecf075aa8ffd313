"""``code``: the share of the example's tests the completion's code passes, run in a sandbox.

Rule: the code is the boxed answer, or, when the box holds no code, the last
```python fenced block after ``</think>``. The example carries ``tests``: a
list of Python snippets (typically ``assert`` statements) run after the code
in the same namespace. Reward = passed / total; a timeout or crash scores 0.
See ``rewards/sandbox.py`` for the isolation.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from rewards.extract import THINK_CLOSE, extract_answer
from rewards.registry import register
from rewards.sandbox import run_python

_FENCE = re.compile(r"```(?:python|py)?\s*\n(.*?)```", re.S)


def extract_code(completion: str) -> str | None:
    answer = extract_answer(completion).answer
    if answer is not None:
        fenced = _FENCE.findall(answer)
        if fenced:
            return fenced[-1]
        if answer.strip():
            return answer
    tail = completion.split(THINK_CLOSE, 1)[-1]
    fenced = _FENCE.findall(tail)
    return fenced[-1] if fenced else None


@register("code")
def code(completion: str, example: Mapping, timeout_s: float = 5.0, memory_mb: int = 512) -> float:
    tests = list(example.get("tests") or [])
    if not tests:
        raise ValueError(f"example {example.get('id')} has no 'tests' for the code verifier")
    source = extract_code(completion)
    if source is None:
        return 0.0
    return run_python(source, tests, timeout_s=timeout_s, memory_mb=memory_mb).share
