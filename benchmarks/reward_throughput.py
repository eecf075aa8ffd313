"""Verifier throughput: calls per second of each built-in verifier, in one process, one call at a time.

    python benchmarks/reward_throughput.py [--seconds 3] [--write]

Each verifier scores a small fixed mix of (completion, example) pairs, after one
warm-up call (imports, the code sandbox's self-check), for about ``--seconds``.
``--write`` also puts the table into docs/rewards.md (the section between its
``reward_throughput`` markers). ``judge`` is left out: its speed is the
endpoint's. With ``reward_workers.workers: N`` a training process scores up to N
calls at a time, on as many cores as it has.
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import rewards  # noqa: E402

DOC = Path(__file__).resolve().parents[1] / "docs" / "rewards.md"


def boxed(answer: str) -> str:
    return f"<think>work</think><answer><|begin_of_box|>{answer}<|end_of_box|></answer>"


ADD_TESTS = ["assert add(1, 2) == 3", "assert add(-1, 1) == 0", "assert add(10 ** 20, 1) == 10 ** 20 + 1"]
# row -> (verifier, what the mix is, i -> [(answer in the box, example)]). Inputs change with i, so no cache
# (math-verify keeps some) answers a repeated call.
WORKLOADS = {
    "math, plain numbers": ("math", "n.0, 1,nnn, n/2, n%", lambda i: [
        (f"{i}.0", {"answer": str(i)}), (f"1,{i % 1000:03d}", {"answer": str(1000 + i % 1000)}),
        (f"{i}/2", {"answer": str(i / 2)}), (f"{i}%", {"answer": str(i / 100)})]),
    "math, LaTeX": ("math", "\\sqrt{4n^2}, nx+n, (n, n+1], x = n (math-verify)", lambda i: [
        (f"\\sqrt{{{4 * i * i}}}", {"answer": str(2 * i)}), (f"{i}x+{i}", {"answer": f"{i}(x+1)"}),
        (f"({i}, {i + 1}]", {"answer": f"({i},{i + 1}]"}), (f"x = {i}", {"answer": str(i)})]),
    "numeric": ("numeric", "n.5, a year", lambda i: [(f"{i}.5", {"answer": str(i)}),
                                                     (str(1900 + i % 100), {"answer": str(1900 + i % 100)})]),
    "choice": ("choice", "(B), option text", lambda i: [
        ("(B)", {"answer": "B"}), (f"Rome {i}", {"answer": "B", "options": {"A": "Paris", "B": f"Rome {i}"}})]),
    "exact": ("exact", "whitespace-normalised string", lambda i: [(f" a  b {i} ", {"answer": f"a b {i}"})]),
    "ocr": ("ocr", "a 44-character line", lambda i: [
        (f"The quick brown fox jumps over the lazy {i:03d}",
         {"answer": f"The quick brown fax jumps over the lazy {i}."})]),
    "grounding": ("grounding", "3 boxes against 2", lambda i: [
        (f"[0, 0, 10, {10 + i % 5}], [20, 20, 30, 30], [50, 50, 60, 60]",
         {"answer": [[0, 0, 10, 10], [21, 21, 31, 31]]})]),
    "gui": ("gui", "a click", lambda i: [
        (f'{{"action": "click", "point": [{100 + i % 30}, 100]}}',
         {"answer": {"action": "click", "point": [100, 100]}})]),
    "format": ("format", "the answer format", lambda i: [(f"anything {i}", {})]),
    "code": ("code", "3 asserts, in the bubblewrap sandbox", lambda i: [
        (f"def add(a, b):\n    return a + b + {i} - {i}", {"id": "c", "answer": "", "tests": ADD_TESTS})]),
}


def measure(verifier: str, inputs, seconds: float) -> tuple[int, float]:
    fn = rewards.get(verifier)
    answer, example = inputs(-1)[0]
    fn(boxed(answer), example)  # warm-up: imports, the sandbox's self-check
    calls, started = 0, time.perf_counter()
    for i in range(10**9):
        for answer, example in inputs(i):
            fn(boxed(answer), example)
            calls += 1
        elapsed = time.perf_counter() - started
        if elapsed >= seconds:
            return calls, elapsed
    raise AssertionError("unreachable")


def table(seconds: float) -> str:
    rows = ["| verifier | inputs | calls | s | calls/s |", "| --- | --- | ---: | ---: | ---: |"]
    for row, (verifier, what, inputs) in WORKLOADS.items():
        calls, elapsed = measure(verifier, inputs, seconds)
        rows.append(f"| `{row}` | {what} | {calls} | {elapsed:.1f} | {calls / elapsed:,.0f} |")
        print(rows[-1], flush=True)
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    machine = f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    return "\n".join(rows) + (f"\n\nOne process, one call at a time, niceness {os.nice(0)}; {machine}; "
                               f"load average {load} when it ended.")


def write_section(markdown: str) -> None:
    text = DOC.read_text()
    block = f"<!-- BEGIN reward_throughput -->\n{markdown.strip()}\n<!-- END reward_throughput -->"
    pattern = re.compile(r"<!-- BEGIN reward_throughput -->.*?<!-- END reward_throughput -->", re.S)
    if not pattern.search(text):
        raise SystemExit(f"{DOC} has no reward_throughput markers")
    DOC.write_text(pattern.sub(lambda _: block, text))
    print(f"wrote the reward_throughput section of {DOC}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=3.0, help="time per verifier")
    parser.add_argument("--write", action="store_true", help="also write the table into docs/rewards.md")
    args = parser.parse_args()
    markdown = table(args.seconds)
    print(markdown)
    if args.write:
        write_section(markdown)


if __name__ == "__main__":
    main()
