"""The reward-failure budget: a run on mostly failing verifiers stops with a message that says why."""

import pytest

from rewards.router import RewardRouter
from rlcs.rl.failures import FailureBudget, RewardFailures

from .conftest import run_rlcs


def always_raises(completion, example):
    raise KeyError("bbox")  # e.g. a verifier expecting a field this data does not have


def half_fail(completion, example):
    if example["id"].endswith("odd"):
        raise ValueError("odd one out")
    return 1.0


def _examples(n):
    return [{"id": f"e{i}{'odd' if i % 2 else ''}", "domain": "d", "answer": "1"} for i in range(n)]


def test_budget_stops_after_steps_in_row_over_the_share_naming_domain_verifier_and_error():
    router = RewardRouter.from_config({"d": {"verifier": "tests.test_reward_failures:half_fail"}})
    budget = FailureBudget(max_share=0.2, steps_in_row=3)
    for step in (1, 2):
        router.score(["x"] * 8, _examples(8))
        assert budget.check(router, 8, step) == pytest.approx(0.5)
    router.score(["x"] * 8, _examples(8))
    with pytest.raises(RewardFailures, match=r"step 3: 50% .* 3 steps in a row; most in domain 'd' \(4 this step\), "
                                             r"last error: tests.test_reward_failures:half_fail: error: ValueError"):
        budget.check(router, 8, 3)


def test_a_step_under_the_share_resets_the_count():
    router = RewardRouter.from_config({"d": {"verifier": "tests.test_reward_failures:half_fail"}})
    budget = FailureBudget(max_share=0.2, steps_in_row=2)
    router.score(["x"] * 8, _examples(8))
    budget.check(router, 8, 1)
    router.score(["x"] * 8, [e for e in _examples(16) if not e["id"].endswith("odd")])  # no failures
    assert budget.check(router, 8, 2) == 0
    router.score(["x"] * 8, _examples(8))
    assert budget.check(router, 8, 3) == pytest.approx(0.5)  # one over in a row again, not two


def test_rl_run_with_a_broken_verifier_stops_with_a_clear_error(choice_task):
    result = run_rlcs(["rl", "--config", "recipes/tiny/rl.yaml", f"output_dir={choice_task / 'rl-broken'}",
                       f"model.path={choice_task / 'sft/model'}", f"data.train={choice_task / 'rl.jsonl'}",
                       "data.eval=null", "rewards.choice.verifier=tests.test_reward_failures:always_raises",
                       "reward_workers.workers=0", "rollout.max_new_tokens=32", "rollout.answer_budget=8",
                       "train.steps=5", "logging.wandb=false"], expect_failure=True)
    assert result.returncode == 2
    assert "100% of the rewards were verifier failures" in result.stderr
    assert "domain 'choice'" in result.stderr and "KeyError: 'bbox'" in result.stderr


def returns_nan(completion, example):
    return float("nan")  # e.g. a ratio over an empty ground truth


@pytest.mark.parametrize("workers", [0, 1])
def test_a_non_finite_reward_is_a_counted_failure_scored_at_the_floor(workers):
    router = RewardRouter.from_config({"d": {"verifier": "tests.test_reward_failures:returns_nan", "min_reward": -1.0}},
                                      workers=workers, memory_mb=None)  # the worker imports this module, torch too
    try:
        assert router.score(["x"] * 3, _examples(3)) == [-1.0, -1.0, -1.0]
        assert router.failures()["d"] == 3
        assert "non-finite reward" in router.last_failure["d"]
    finally:
        router.close()


def test_a_group_with_a_non_finite_reward_is_refused_before_it_reaches_a_sampler():
    from rlcs.curriculum.interface import GroupOutcome

    with pytest.raises(ValueError, match="non-finite reward"):
        GroupOutcome("e0", "d", [1.0, float("nan")], 1)


def test_a_misspelt_verifier_keyword_is_refused_when_the_rewards_are_read():
    from rewards.registry import RewardSpecError

    with pytest.raises(RewardSpecError, match=r"rewards\.d\.terms\[1\]\.kwargs: exact does not take \['case_sensitiv'\]"
                                              r".*it takes \['case_sensitive'\]"):
        RewardRouter.from_config({"d": {"terms": [{"verifier": "math"},
                                                  {"verifier": "exact", "kwargs": {"case_sensitiv": True}}]}})
    RewardRouter.from_config({"d": {"verifier": "grounding", "kwargs": {"iou_threshold": 0.3}}})  # a real keyword


def test_a_reward_whose_two_terms_fail_counts_once_so_max_share_1_turns_the_budget_off():
    router = RewardRouter.from_config({"d": {"terms": [{"verifier": "tests.test_reward_failures:always_raises"},
                                                       {"verifier": "tests.test_reward_failures:always_raises"}]}})
    router.score(["x"] * 4, _examples(4))
    assert router.failures()["d"] == 4
    budget = FailureBudget(max_share=1.0, steps_in_row=1)
    assert budget.check(router, 4, 1) == pytest.approx(1.0)  # at the share, not over it: no stop


def test_a_wrapped_verifier_is_checked_against_the_wrapper_it_is_called_through():
    import functools

    from rewards.registry import RewardSpecError, register

    def plain(completion, example):
        return 1.0

    @functools.wraps(plain)
    def scaled(completion, example, scale=1.0):  # a decorator's own keyword
        return scale * plain(completion, example)

    register("test_scaled_verifier")(scaled)
    RewardRouter.from_config({"d": {"verifier": "test_scaled_verifier", "kwargs": {"scale": 2.0}}})
    with pytest.raises(RewardSpecError, match="does not take"):
        RewardRouter.from_config({"d": {"verifier": "test_scaled_verifier", "kwargs": {"scal": 2.0}}})
