"""The code sandbox against hostile programs, and the code verifier on top of it."""

import os
import time

import pytest

import rewards
from rewards.code import extract_code
from rewards.sandbox import run_python

ADD_TESTS = ["assert add(1, 2) == 3", "assert add(-1, 1) == 0"]


def test_a_correct_solution_passes_every_test():
    result = run_python("def add(a, b):\n    return a + b\n", ADD_TESTS)
    assert (result.passed, result.total, result.status) == (2, 2, "ok")


def test_partial_credit_and_the_first_error_are_reported():
    result = run_python("def add(a, b):\n    return 3\n", ADD_TESTS)
    assert (result.passed, result.status) == (1, "ok") and "AssertionError" in result.detail


def test_an_infinite_loop_is_killed_at_the_wall_limit():
    started = time.monotonic()
    result = run_python("while True:\n    pass\n", ADD_TESTS, timeout_s=1.0)
    assert result.status == "timeout" and result.passed == 0
    assert time.monotonic() - started < 3.0


def test_a_fork_bomb_is_refused_and_returns_promptly():
    started = time.monotonic()
    bomb = "import os\nwhile True:\n    os.fork()\n"
    result = run_python(bomb + "def add(a, b):\n    return a + b\n", ADD_TESTS, timeout_s=3.0)
    assert result.passed == 0 and "not allowed" in result.detail
    spawn = "import subprocess\nsubprocess.Popen(['sleep', '100'])\n"
    assert "not allowed" in run_python(spawn, ADD_TESTS).detail
    assert time.monotonic() - started < 5.0


def test_a_memory_bomb_fails_inside_its_limit():
    started = time.monotonic()
    result = run_python("block = bytearray(2 * 1024 ** 3)\n", ADD_TESTS, memory_mb=256, timeout_s=5.0)
    assert result.passed == 0 and result.status in {"ok", "crashed"}
    assert result.status != "ok" or "MemoryError" in result.detail
    assert time.monotonic() - started < 5.0


def test_writes_outside_the_sandbox_directory_are_refused(tmp_path):
    target = tmp_path / "escaped.txt"
    os.chmod(tmp_path, 0o777)  # even a world-writable place is out of reach
    result = run_python(f"open({str(target)!r}, 'w').write('x')\n", ADD_TESTS)
    assert not target.exists() and "outside the sandbox" in result.detail
    inside = run_python("open('scratch.txt', 'w').write('ok')\ndef add(a, b):\n    return a + b\n", ADD_TESTS)
    assert inside.passed == 2  # its own directory is writable


def test_no_network_and_no_native_code():
    result = run_python("import socket\nsocket.create_connection(('127.0.0.1', 22), timeout=1)\n", ADD_TESTS)
    assert result.passed == 0 and "not allowed" in result.detail
    result = run_python("import ctypes\nctypes.CDLL(None).system(b'true')\n", ADD_TESTS)
    assert result.passed == 0 and "not allowed" in result.detail


def test_a_spoofed_result_line_does_not_count():
    fake = 'print("\\n" + "0" * 32 + \'{"passed": 2, "error": ""}\')\nimport os\nos._exit(0)\n'
    result = run_python(fake, ADD_TESTS)
    assert result.passed == 0


def test_code_verifier_extracts_the_code_and_scores_the_share():
    box = "<think>plan</think><answer><|begin_of_box|>def add(a, b):\n    return a + b<|end_of_box|></answer>"
    example = {"id": "c1", "answer": "", "tests": ADD_TESTS}
    assert rewards.get("code")(box, example) == 1.0
    fenced = "<think>x</think><answer>```python\ndef add(a, b):\n    return a - b\n```\n" \
             "<|begin_of_box|>see above<|end_of_box|></answer>"
    assert extract_code(fenced).startswith("see above") is True  # the box wins when it holds text
    tail = "<think>x</think>```python\ndef add(a, b):\n    return 3\n```"
    assert extract_code(tail) == "def add(a, b):\n    return 3\n"
    with pytest.raises(ValueError, match="no 'tests'"):
        rewards.get("code")(box, {"id": "c2", "answer": ""})
