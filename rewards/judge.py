"""``judge``: an LLM judge behind an OpenAI-compatible chat endpoint, for open-ended domains.

Rule: the judge model sees the question, the reference answer and the
response (the boxed answer, or the text after ``</think>`` when there is no
box) and replies with a score; the first number in its reply, clamped to
[0, 1], is the reward. Each request has ``timeout_s``; transport errors and
HTTP 429/5xx are retried ``retries`` times with exponential backoff; after
that the call raises, and the router gives the domain's minimum reward and
counts an error. The API key, if any, comes from the environment variable
named by ``api_key_env``.
"""

from __future__ import annotations

import json
import os
import re
import time
import urllib.error
import urllib.request
from collections.abc import Mapping

from rewards.extract import THINK_CLOSE, extract_answer
from rewards.registry import register

TEMPLATE = (
    "You grade answers. Question:\n{question}\n\nReference answer:\n{reference}\n\nResponse:\n{response}\n\n"
    "Reply with a single number between 0 and 1: 1 if the response is correct and complete, 0 if it is wrong."
)
_SCORE = re.compile(r"-?\d+(?:\.\d+)?")


def _post(url: str, payload: dict, timeout_s: float, api_key: str | None) -> dict:
    headers = {"Content-Type": "application/json"}
    if api_key:
        headers["Authorization"] = f"Bearer {api_key}"
    request = urllib.request.Request(url, data=json.dumps(payload).encode(), headers=headers, method="POST")
    with urllib.request.urlopen(request, timeout=timeout_s) as response:  # noqa: S310 - URL from the recipe
        return json.loads(response.read())


@register("judge")
def judge(completion: str, example: Mapping, url: str = "http://127.0.0.1:8000/v1/chat/completions",
          model: str = "judge", timeout_s: float = 30.0, retries: int = 2, backoff_s: float = 0.5,
          template: str = TEMPLATE, api_key_env: str = "RLCS_JUDGE_API_KEY") -> float:
    extracted = extract_answer(completion).answer
    response = extracted if extracted is not None else completion.split(THINK_CLOSE)[-1].strip()
    if not response:
        return 0.0
    question = example.get("prompt") or json.dumps(example.get("messages", ""))
    payload = {"model": model, "temperature": 0.0, "max_tokens": 16, "messages": [
        {"role": "user", "content": template.format(question=question, reference=example["answer"],
                                                    response=response)}]}
    last_error: Exception | None = None
    for attempt in range(retries + 1):
        if attempt:
            time.sleep(backoff_s * 2 ** (attempt - 1))
        try:
            reply = _post(url, payload, timeout_s, os.environ.get(api_key_env))
            text = reply["choices"][0]["message"]["content"]
            match = _SCORE.search(text or "")
            if match is None:
                raise ValueError(f"judge reply has no score: {text!r}")
            return min(1.0, max(0.0, float(match.group())))
        except urllib.error.HTTPError as exc:
            if exc.code != 429 and exc.code < 500:
                raise RuntimeError(f"judge at {url} refused the request: HTTP {exc.code}") from exc
            last_error = exc
        except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:
            last_error = exc
    raise RuntimeError(f"judge at {url} failed after {retries + 1} attempts: {last_error}")
