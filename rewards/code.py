"""``code``: the share of the example's tests the completion's code passes, run in a sandbox.

Rule: the code is the boxed answer, or, when the box holds no code, the last
```python fenced block after ``</think>``. The example carries ``tests``: a
list of Python snippets (typically ``assert add(1, 2) == 3``) that use what the
code defines. Reward = passed / total, clamped to [0, 1]; a timeout or crash
of the solution scores 0. A failure of the sandbox itself (bwrap could not
set a process up, the solution's harness never started) raises
``SandboxFailure`` instead, so it counts as a verifier failure, not as a 0.
``memory_mb`` above the address-space limit this process inherited (a verifier
pool's ``memory_mb``) is lowered to that limit, with a warning once.

The tests run in their own process and see the code's functions and classes
through calls that return plain data, so code cannot fake a pass (nor shadow
a builtin or a standard module the tests use); a test may pass plain data
(and the code's own objects) to the code, not functions. See
``rewards/sandbox.py`` for the isolation.

With no working OS sandbox (bubblewrap) the verifier refuses to score (it
raises, so each call counts as a verifier failure, with the reason) unless
its kwargs say ``allow_unsandboxed: true``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from rewards.extract import THINK_CLOSE, extract_answer
from rewards.registry import register
from rewards.sandbox import require_sandbox, run_python

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
def code(completion: str, example: Mapping, timeout_s: float = 5.0, memory_mb: int = 512, file_mb: int = 8,
         allow_unsandboxed: bool = False) -> float:
    require_sandbox(allow_unsandboxed)  # refuse before anything else, so a machine without bwrap fails loudly
    tests = list(example.get("tests") or [])
    if not tests:
        raise ValueError(f"example {example.get('id')} has no 'tests' for the code verifier")
    source = extract_code(completion)
    if source is None:
        return 0.0
    return run_python(source, tests, timeout_s=timeout_s, memory_mb=memory_mb, file_mb=file_mb,
                      allow_unsandboxed=allow_unsandboxed).share
