"""The reward-failure budget: a run whose rewards are mostly verifier failures stops.

Every failed verifier call scores the domain's minimum reward and is counted, so
a broken verifier (a missing dependency in the workers, a changed data format)
would otherwise let a run train for hours on floor rewards. After each step the
processes pool how many of the step's rewards failed; more than ``max_share`` of
them for ``steps_in_row`` steps in a row stops the run, naming the domain with
the most failures, its verifier and the last error.
"""

from __future__ import annotations

from collections import Counter

from accelerate.utils import gather_object


class RewardFailures(RuntimeError):
    """Too many of the rewards in too many steps in a row were verifier failures."""


class FailureBudget:
    def __init__(self, max_share: float, steps_in_row: int):
        self.max_share, self.steps_in_row = max_share, steps_in_row
        self.seen: Counter = Counter()
        self.over_in_row = 0

    def check(self, router, rewards_this_step: int, step: int) -> float:
        """Collective. The share of this step's rewards (all processes) that failed; raises
        ``RewardFailures`` once the budget is exceeded ``steps_in_row`` times in a row."""
        now = router.failures()
        new = now - self.seen
        self.seen = now
        per_process = gather_object([(dict(new), rewards_this_step, dict(router.last_failure))])
        failed, total, last = Counter(), 0, {}
        for counts, rewards, failures in per_process:
            failed.update(counts)
            total += rewards
            last.update(failures)
        share = sum(failed.values()) / max(total, 1)
        self.over_in_row = self.over_in_row + 1 if share > self.max_share else 0
        if self.over_in_row >= self.steps_in_row:
            domain, count = failed.most_common(1)[0]
            raise RewardFailures(
                f"step {step}: {share:.0%} of the rewards were verifier failures, over the budget of "
                f"{self.max_share:.0%} for {self.over_in_row} steps in a row; most in domain '{domain}' "
                f"({count} this step), last error: {last.get(domain, 'unknown')} "
                "(fix the verifier, or raise reward_failures.max_share)")
        return share
