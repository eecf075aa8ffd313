"""Verifiers on tables of (completion answer, ground truth, expected reward), traps included."""

import textwrap

import pytest

import rewards
from rewards.extract import extract_answer
from rewards.registry import RewardSpecError
from rewards.router import RewardRouter


def boxed(answer: str) -> str:
    return f"<think>work</think><answer><|begin_of_box|>{answer}<|end_of_box|></answer>"


@pytest.mark.parametrize("completion, reason", [
    ("<think>x</think><answer>42</answer>", "exactly one box"),
    ("<think>x</think><answer><|begin_of_box|>1<|end_of_box|><|begin_of_box|>2<|end_of_box|></answer>",
     "exactly one box"),
    ("<think>x</think><answer>\\boxed{42}</answer>", "boxed"),
    ("<think>x</think><answer><think><|begin_of_box|>1<|end_of_box|></answer>", "nested"),
    ("<answer><|begin_of_box|>1<|end_of_box|></answer>", "</think>"),
    ("<think>x</think><answer><|begin_of_box|>1<|end_of_box|>", "<answer>"),
    ("<think>a</think><think>b</think><answer><|begin_of_box|>1<|end_of_box|></answer>", "</think>"),
])
def test_malformed_answers_extract_nothing(completion, reason):
    extraction = extract_answer(completion)
    assert extraction.answer is None and reason in extraction.error


def test_empty_box_is_an_empty_answer():
    assert extract_answer(boxed("")).answer == ""


@pytest.mark.parametrize("answer, truth, expected", [
    ("43", "43", 1.0), ("43.0", "43", 1.0), ("1/2", "0.5", 1.0), ("0.5", "1/2", 1.0), ("1,234", "1234", 1.0),
    ("+7", "7", 1.0), ("-15", "-15", 1.0), ("15", "-15", 0.0), ("43.0001", "43", 0.0),
    ("", "0", 0.0), ("forty-three", "43", 0.0), ("1/0", "1", 0.0), ("12,34", "1234", 0.0),
    ("12 cm", "12", 1.0), ("12\\text{ cm}", "12", 1.0), ("\\$5", "5", 1.0), ("5x", "5", 0.0),
    ("\\frac{1}{2}", "0.5", 1.0), ("\\sqrt{4}", "2", 1.0), ("2x+2", "2(x+1)", 1.0), ("x^2", "x^3", 0.0),
    ("__import__('os').system('touch /tmp/rlcs_pwned')", "0", 0.0),
    ("eval(\"__import__('os').system('touch /tmp/rlcs_pwned')\")", "1", 0.0),
    # words are not products of single-letter symbols
    ("listen", "silent", 0.0), ("Yes", "yes", 1.0), ("xy", "yx", 1.0),
    # scientific notation is a number, not 1 times Euler's number cubed
    ("1e3", "1000", 1.0), ("1e3", "8.154845485377136", 0.0), ("2.5E-3", "0.0025", 1.0),
    # integers compare exactly at any size
    ("9" * 400, "9" * 400, 1.0), ("9" * 400, "9" * 399 + "8", 0.0),
    # \text{3} is the number 3, not a unit to strip
    ("\\text{3}", "3", 1.0),
    # a percent is its number or its fraction, written % or \%
    ("50%", "0.5", 1.0), ("50\\%", "0.5", 1.0), ("50%", "50", 1.0), ("50%", "0.4", 0.0),
    # units must agree where both sides name one
    ("5 m", "5 cm", 0.0), ("5 m", "5", 1.0), ("12\\text{ cm}", "12 mm", 0.0), ("5 seconds", "5 s", 1.0),
])
def test_math(answer, truth, expected):
    assert rewards.get("math")(boxed(answer), {"answer": truth}) == expected


def test_model_text_is_never_executed(tmp_path):
    marker = tmp_path / "pwned"
    for attack in (f"__import__('os').system('touch {marker}')", f"exec(\"open('{marker}','w')\")",
                   f"(lambda: __import__('os').system('touch {marker}'))()"):
        for name in ("math", "numeric", "exact", "choice", "ocr"):
            rewards.get(name)(boxed(attack), {"answer": "1"})
    assert not marker.exists()


@pytest.mark.parametrize("answer, truth, expected", [
    ("43", "43", 1.0), ("43.5", "43", 1.0), ("44.2", "43", 0.0), ("1/2", "0.5", 1.0), ("1,234", "1234", 1.0),
    ("2019", "2019", 1.0), ("2020", "2019", 0.0), ("2019.4", "2019", 0.0),  # years are exact
    ("4100", "4000", 1.0),  # not a year: 2.5% tolerance
    ("", "0", 0.0), ("n/a", "3", 0.0),
])
def test_numeric_for_charts(answer, truth, expected):
    assert rewards.get("numeric")(boxed(answer), {"answer": truth}) == expected


def test_numeric_tolerance_is_relative_and_configurable():
    assert rewards.get("numeric")(boxed("100.001"), {"answer": "100"}, rel_tol=1e-6) == 0.0
    assert rewards.get("numeric")(boxed("100.00001"), {"answer": "100"}, rel_tol=1e-6) == 1.0
    assert rewards.get("numeric")(boxed("2020"), {"answer": "2019"}, exact_years=False) == 1.0


def test_numeric_rejects_a_non_numeric_ground_truth():
    with pytest.raises(ValueError, match="not a number"):
        rewards.get("numeric")(boxed("1"), {"id": "x", "answer": "abc"})


@pytest.mark.parametrize("answer, truth, expected", [
    ("B", "B", 1.0), ("(B)", "B", 1.0), ("b", "B", 1.0), ("B.", "B", 1.0), ("C", "B", 0.0), ("AB", "B", 0.0),
])
def test_choice_by_letter(answer, truth, expected):
    assert rewards.get("choice")(boxed(answer), {"answer": truth}) == expected


def test_choice_by_option_text():
    example = {"answer": "B", "options": {"A": "Paris", "B": "Rome"}}
    assert rewards.get("choice")(boxed("Rome"), example) == 1.0
    assert rewards.get("choice")(boxed("Paris"), example) == 0.0


@pytest.mark.parametrize("answer, truth, expected", [
    ("a b c", "a b c", 1.0), ("abc", "a b c", 1.0), ("43.0", "43", 1 - 2 / 4), ("a b d", "a b c", 2 / 3),
    ("", "", 1.0), ("", "abc", 0.0),
])
def test_ocr_similarity(answer, truth, expected):
    assert rewards.get("ocr")(boxed(answer), {"answer": truth}) == pytest.approx(expected)


def test_exact_normalises_whitespace_only():
    assert rewards.get("exact")(boxed(" a  b "), {"answer": "a b"}) == 1.0
    assert rewards.get("exact")(boxed("A b"), {"answer": "a b"}) == 0.0
    assert rewards.get("exact")(boxed("A b"), {"answer": "a b"}, case_sensitive=False) == 1.0


def test_register_and_file_specs(tmp_path):
    @rewards.register("test_always_half")
    def half(completion, example):
        return 0.5

    assert rewards.get("test_always_half")("", {}) == 0.5
    file = tmp_path / "my_reward.py"
    file.write_text(textwrap.dedent("""
        def length_bonus(completion, example, scale=1.0):
            return scale * len(completion)
    """))
    assert rewards.get(f"{file}:length_bonus")("abcd", {}) == 4
    assert rewards.get("rewards.numeric:numeric") is rewards.get("numeric")
    with pytest.raises(RewardSpecError, match="unknown reward 'nope'"):
        rewards.get("nope")
    with pytest.raises(RewardSpecError, match="no callable 'missing'"):
        rewards.get(f"{file}:missing")


def test_router_fails_at_startup_for_unmapped_domains_and_bad_specs():
    with pytest.raises(RewardSpecError, match=r"no verifier configured for domain\(s\) \['poetry'\]"):
        RewardRouter.from_config({"math": {"verifier": "numeric"}}, [{"domain": "poetry"}])
    with pytest.raises(RewardSpecError, match="rewards.math: unknown reward 'nummeric'"):
        RewardRouter.from_config({"math": {"verifier": "nummeric"}})


def test_router_scores_by_domain_and_survives_a_crashing_verifier(tmp_path):
    file = tmp_path / "bad.py"
    file.write_text("def boom(completion, example):\n    raise RuntimeError('verifier bug')\n")
    router = RewardRouter.from_config({
        "math": {"verifier": "numeric", "kwargs": {"rel_tol": 1e-6}},
        "flaky": {"verifier": f"{file}:boom", "min_reward": -1.0},
    })
    scores = router.score([boxed("2"), boxed("2"), boxed("3")],
                          [{"domain": "math", "answer": "2"}, {"domain": "flaky", "id": "f1", "answer": "2"},
                           {"domain": "math", "answer": "2"}])
    assert scores == [1.0, -1.0, 0.0]
    assert router.errors == {"flaky": 1}


@pytest.mark.parametrize("answer, truth, expected", [("7", "7", 1.0), ("7.0", "7", 0.0), ("-7", "7", 0.0),
                                                     ("+7", "7", 1.0)])
def test_worked_example(answer, truth, expected):
    from rewards.examples.integer_answer import integer_answer

    assert integer_answer(boxed(answer), {"answer": truth}) == expected
    assert integer_answer(boxed(answer), {"answer": "x"}) is None  # not applicable
    from pathlib import Path

    spec = f"{Path(rewards.__file__).parent / 'examples/integer_answer.py'}:integer_answer"
    assert rewards.get(spec)(boxed("7"), {"answer": "7"}, allow_sign=False) == 1.0
    assert rewards.get("rewards.examples.integer_answer:integer_answer") is integer_answer


HOSTILE = '''
import os
import time


def boom(completion, example):
    raise RuntimeError("verifier bug")


def hang(completion, example):
    while True:
        time.sleep(1)


def die(completion, example):
    os._exit(3)
'''


def test_isolated_router_survives_raising_hanging_and_dying_verifiers(tmp_path):
    import time

    file = tmp_path / "hostile.py"
    file.write_text(HOSTILE)
    router = RewardRouter.from_config({
        "math": {"verifier": "numeric"},
        "boom": {"verifier": f"{file}:boom", "min_reward": -1.0},
        "hang": {"verifier": f"{file}:hang", "min_reward": -1.0},
        "die": {"verifier": f"{file}:die"},
    }, workers=2, timeout_s=1.0)
    try:
        examples = [{"domain": d, "id": f"{d}-1", "answer": "2"} for d in ("math", "boom", "hang", "die", "math")]
        completions = [boxed("2"), boxed("2"), boxed("2"), boxed("2"), boxed("3")]
        started = time.monotonic()
        scores = router.score(completions, examples)
        elapsed = time.monotonic() - started
        assert scores == [1.0, -1.0, -1.0, 0.0, 0.0]
        assert elapsed < 3.0  # one timeout of 1 s, in parallel with the rest
        assert router.errors == {"boom": 1, "die": 1} and router.timeouts == {"hang": 1}
        assert router.metrics()["reward/hang/timeouts"] == 1
        # the pool replaced its killed workers and keeps scoring
        assert router.score([boxed("2")] * 4, [examples[0]] * 4) == [1.0] * 4
    finally:
        router.close()


def test_two_hung_verifiers_in_one_batch_still_return_within_the_limit(tmp_path):
    import time

    file = tmp_path / "hostile.py"
    file.write_text(HOSTILE)
    router = RewardRouter.from_config({"hang": {"verifier": f"{file}:hang"}}, workers=2, timeout_s=0.5)
    try:
        started = time.monotonic()
        assert router.score([boxed("1")] * 2, [{"domain": "hang", "answer": "1"}] * 2) == [0.0, 0.0]
        assert time.monotonic() - started < 2.0 and router.timeouts == {"hang": 2}
    finally:
        router.close()


@pytest.mark.parametrize("answer, truth, expected", [
    ("[0, 0, 10, 10]", [[0, 0, 10, 10]], 1.0),
    ("[0, 0, 10, 10], [20, 20, 30, 30]", [[20, 20, 30, 30], [0, 0, 10, 10]], 1.0),
    ("[0, 0, 10, 10]", [[0, 0, 10, 10], [20, 20, 30, 30]], 2 / 3),  # precision 1, recall 1/2
    ("[0, 0, 10, 10], [0, 0, 10, 10]", [[0, 0, 10, 10], [1, 1, 11, 11]], 1.0),  # 1:1, IoU(.,second)=0.68
    ("[0, 0, 10, 10], [0, 0, 10, 10]", [[0, 0, 10, 10], [20, 20, 30, 30]], 0.5),  # a duplicate cannot match twice
    (", ".join(f"[{i}, {i}, {i + 10}, {i + 10}]" for i in range(0, 100, 10)), [[0, 0, 10, 10]], 2 / 11),  # spam
    ("[0, 0, 10, 10], [50, 50, 60, 60]", [[0, 0, 10, 10]], 2 / 3),  # one extra box costs precision
    ("[0, 0, 10, 10]", [[5, 0, 15, 10]], 0.0),  # IoU 1/3 < 0.5
    ("(10, 10, 0, 0)", "[[0, 0, 10, 10]]", 1.0),  # corners reordered; text ground truth
    ("no boxes here", [[0, 0, 10, 10]], 0.0),
])
def test_grounding(answer, truth, expected):
    assert rewards.get("grounding")(boxed(answer), {"answer": truth}) == pytest.approx(expected)


def test_grounding_threshold_is_configurable():
    assert rewards.get("grounding")(boxed("[0, 0, 10, 10]"), {"answer": [[5, 0, 15, 10]]}, iou_threshold=0.3) == 1.0


@pytest.mark.parametrize("answer, truth, expected", [
    ('{"action": "click", "point": [100, 100]}', {"action": "click", "point": [100, 100]}, 1.0),
    ('{"action": "click", "point": [110, 100]}', {"action": "click", "point": [100, 100]}, 0.9),  # d=10
    ('{"action": "click", "point": [120, 100]}', {"action": "click", "point": [100, 100]}, 0.8),  # d=20
    ('{"action": "click", "point": [125, 100]}', {"action": "click", "point": [100, 100]}, 0.5),  # d=25 -> 1-25/50
    ('{"action": "click", "point": [200, 100]}', {"action": "click", "point": [100, 100]}, 0.0),
    ('{"action": "type", "text": "hello"}', {"action": "type", "text": "hello"}, 1.0),
    ('{"action": "type", "text": "hallo"}', {"action": "type", "text": "hello"}, 0.8),
    ('{"action": "type", "text": "hello"}', {"action": "click", "point": [1, 1]}, 0.0),  # wrong action
    ('{"action": "click", "box": [0, 0, 10, 10]}', {"action": "click", "box": [0, 0, 10, 20]}, 0.5),
    ('{"action": "click"}', {"action": "click", "point": [1, 1]}, 0.0),  # missing field
    ("click at 100,100", {"action": "click", "point": [100, 100]}, 0.0),  # not JSON
])
def test_gui(answer, truth, expected):
    assert rewards.get("gui")(boxed(answer), {"answer": truth}) == pytest.approx(expected)


def test_format_reward():
    assert rewards.get("format")(boxed("anything"), {}) == 1.0
    assert rewards.get("format")("<think>x</think><answer>no box</answer>", {}) == 0.0


def test_math_verifier_does_not_flood_the_logs_with_math_verifys_timeout_notice():
    import subprocess
    import sys

    code = ("import rewards; f = rewards.get('math'); "
            "print(f('<think>x</think><answer><|begin_of_box|>\\\\frac{1}{2}<|end_of_box|></answer>', "
            "{'answer': '\\\\frac{2}{4}'}))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "1.0"  # the LaTeX path ran (math-verify), so the notice would have fired
    assert "Timeout is disabled" not in result.stderr + result.stdout
