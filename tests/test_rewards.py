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
    ("__import__('os').system('touch /tmp/rlcs_pwned')", "0", 0.0),
])
def test_numeric(answer, truth, expected):
    assert rewards.get("numeric")(boxed(answer), {"answer": truth}) == expected


def test_numeric_tolerance_is_relative():
    assert rewards.get("numeric")(boxed("100.00001"), {"answer": "100"}) == 1.0
    assert rewards.get("numeric")(boxed("100.001"), {"answer": "100"}, rel_tol=1e-6) == 0.0
    assert rewards.get("numeric")(boxed("100.001"), {"answer": "100"}, rel_tol=1e-4) == 1.0


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
