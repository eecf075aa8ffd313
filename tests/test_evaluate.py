"""Held-out scoring: the verifiers that give the RL reward, exact match beside them, pass@1 of samples."""

import json
from pathlib import Path

import pytest

from rewards.router import RewardRouter
from rlcs import tasks
from rlcs.evaluate import format_table, score_eval, score_table

REWARDS = {"arithmetic": {"verifier": "math"}, "algebra": {"verifier": "math"}, "counting": {"verifier": "math"},
           "choice": {"verifier": "choice"}, "transcription": {"verifier": "ocr"}}


def _completions(problem: tasks.Problem) -> dict[str, str]:
    wrong = "B" if problem.answer == "A" else ("A" if problem.domain == "choice" else problem.answer + "7")
    return {
        "right": problem.response(),
        "wrong": problem.response().replace(f">{problem.answer}<", f">{wrong}<"),
        "no box": f"<think>{problem.reasoning()}</think><answer>{problem.answer}</answer>",
        "cut off": f"<think>{problem.reasoning()}",
    }


def test_verifier_scores_agree_with_exact_match_where_both_apply():
    problems = tasks.generate(6, seed=3)
    router = RewardRouter.from_config(REWARDS)
    examples, completions = [], []
    for problem in problems:
        for text in _completions(problem).values():
            examples.append(problem.example())
            completions.append(text)
    metrics, records = score_eval(examples, completions, router.score)
    for record in records:
        if record["domain"] == "transcription" and 0 < record["score"] < 1:
            continue  # edit-distance partial credit: exact match has no counterpart
        assert record["score"] == float(record["exact"]), record
    # right, wrong, no box, cut off: exactly one in four is right, whichever yardstick
    assert metrics["eval/exact"] == pytest.approx(0.25)
    for domain in ("arithmetic", "algebra", "counting", "choice"):
        assert metrics[f"eval/{domain}/accuracy"] == pytest.approx(0.25)
        assert metrics[f"eval/{domain}/level1/accuracy"] == pytest.approx(0.25)


def test_partial_credit_counts_in_the_verifier_score_not_in_exact_match():
    problem = tasks.Problem("transcription", 1, "Copy the list:\nA: a\nB: b\nC: c\nD: d", "a b c d", ("…",))
    almost = "<think>…</think><answer><|begin_of_box|>a b c x<|end_of_box|></answer>"
    metrics, _ = score_eval([problem.example()], [almost], RewardRouter.from_config(REWARDS).score)
    assert metrics["eval/exact"] == 0.0
    assert metrics["eval/accuracy"] == pytest.approx(0.75)


def test_pass_at_1_is_the_mean_verifier_score_of_each_items_own_samples():
    problems = list(tasks.generate(3, seed=5, domains=["arithmetic"], levels=(1,)))
    examples = [p.example() for p in problems]
    right_counts = [0, 1, 3]  # of 4 samples each: a mix-up between items would change the per-item values
    sampled = [[_completions(p)["right"]] * k + [_completions(p)["wrong"]] * (4 - k)
               for p, k in zip(problems, right_counts)]
    greedy = [_completions(p)["wrong"] for p in problems]
    metrics, records = score_eval(examples, greedy, RewardRouter.from_config(REWARDS).score, sampled)
    assert metrics["eval/accuracy"] == 0.0
    assert [r["pass@1"] for r in records] == pytest.approx([0.0, 0.25, 0.75])
    assert metrics["eval/pass@1"] == pytest.approx(1 / 3)


def test_every_process_gets_an_equal_share_and_each_item_is_counted_once():
    from rlcs.stages.rl import equal_share

    for count in (1, 2, 7, 8):
        items = list(range(count))
        for world in (1, 2, 3, 8):
            shares = [equal_share(items, rank, world) for rank in range(world)]
            assert len({len(mine) for mine, _ in shares}) == 1, (count, world)  # same generate calls everywhere
            assert all(len(mine) >= 1 for mine, _ in shares)
            counted = [x for mine, n in shares for x in mine[:n]]
            assert counted == items, (count, world)


def test_score_table_and_markdown_by_domain_and_level():
    examples = [{"domain": "a", "level": 1}, {"domain": "a", "level": 2}, {"domain": "b", "level": 1}]
    metrics = score_table(examples, [1.0, 0.0, 0.5], "accuracy")
    assert metrics == {"eval/a/accuracy": 0.5, "eval/a/level1/accuracy": 1.0, "eval/a/level2/accuracy": 0.0,
                       "eval/b/accuracy": 0.5, "eval/b/level1/accuracy": 0.5, "eval/accuracy": 0.5}
    table = format_table(metrics)
    assert "| a | 100% | 0% | 50% |" in table and "| b | 50% | nan% | 50% |" in table


def hangs(completion, example):
    import time

    time.sleep(60)


def test_held_out_scoring_runs_the_recipes_verifiers_in_supervised_workers(tmp_path, micro_model_dir):
    """`rlcs eval --recipe` and `rlcs grade` score as the RL stage does: a hanging verifier times out."""
    import time

    import yaml

    from rlcs.evaluate import recipe_router

    recipe = yaml.safe_load((Path(__file__).resolve().parents[1] / "recipes/tiny/rl.yaml").read_text())
    recipe["rewards"] = {"choice": {"verifier": "tests.test_evaluate:hangs"}}
    recipe["reward_workers"] = {"workers": 1, "timeout_s": 1, "memory_mb": None}  # the worker imports torch
    (tmp_path / "rl.yaml").write_text(yaml.safe_dump(recipe))
    example = {"id": "q", "domain": "choice", "prompt": "A or B?", "answer": "A"}
    (tmp_path / "items.jsonl").write_text(json.dumps(example) + "\n")  # the recipe's own data need not exist
    _, router = recipe_router(tmp_path / "rl.yaml", str(micro_model_dir), [example], data=str(tmp_path / "items.jsonl"))
    try:
        started = time.time()
        assert router.score(["<answer>A</answer>"], [example]) == [0.0]
        assert time.time() - started < 30 and router.timeouts["choice"] == 1
        assert router.failure_summary().startswith("1 verifier failures, scored as the domain's min_reward: "
                                                   "{'choice': 1}")
    finally:
        router.close()
