"""Route each completion to its domain's verifier and keep the run alive when one fails.

The recipe maps every domain to a verifier spec and keyword arguments; all are
resolved at start-up, so an unknown domain or spec fails before any rollout.
With ``workers > 0`` verifiers run in supervised worker processes, each call
under ``timeout_s``; a verifier that raises, hangs or kills its process gives
the domain's minimum reward, is counted (``reward/<domain>/errors``,
``reward/<domain>/timeouts``) and logged with the example id.
"""

from __future__ import annotations

import contextlib
import inspect
import logging
import math
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from rewards.code import code as code_verifier
from rewards.isolation import Call, Outcome, VerifierPool
from rewards.registry import RewardFn, RewardSpecError, get
from rewards.sandbox import require_sandbox

log = logging.getLogger(__name__)


@dataclass
class Term:
    spec: str
    fn: RewardFn
    kwargs: dict = field(default_factory=dict)
    weight: float = 1.0


@dataclass
class DomainReward:
    """A domain's reward: the weighted sum of its terms' values (terms returning None are skipped)."""

    terms: list[Term]
    min_reward: float = 0.0


@dataclass
class RewardRouter:
    domains: dict[str, DomainReward]
    pool: VerifierPool | None = None
    errors: Counter = field(default_factory=Counter)
    timeouts: Counter = field(default_factory=Counter)
    last_failure: dict[str, str] = field(default_factory=dict)  # domain -> "verifier: status: message"

    @classmethod
    def from_config(cls, config: Mapping[str, Mapping], examples: Sequence[Mapping] = (), workers: int = 0,
                    timeout_s: float = 10.0, memory_mb: int | None = 2048) -> RewardRouter:
        """``config``: domain -> {"verifier": spec, "kwargs": {...}, "min_reward": 0.0}
        or domain -> {"terms": [{"verifier": spec, "kwargs": {...}, "weight": w}, ...], "min_reward": 0.0}.
        ``memory_mb``: each worker's address-space cap (with ``workers > 0``; None for none); it also caps
        the code sandbox's processes, which inherit it."""
        domains = {}
        for domain, entry in config.items():
            specs = entry.get("terms") or [{"verifier": entry.get("verifier"), "kwargs": entry.get("kwargs")}]
            terms = []
            for index, term in enumerate(specs):
                where = f"rewards.{domain}" + (f".terms[{index}]" if entry.get("terms") else "")
                try:
                    fn = get(term["verifier"])
                except RewardSpecError as exc:
                    raise RewardSpecError(f"{where}: {exc}") from None
                kwargs = dict(term.get("kwargs") or {})
                _check_kwargs(fn, kwargs, where, term["verifier"])
                terms.append(Term(term["verifier"], fn, kwargs, float(term.get("weight", 1.0))))
            domains[domain] = DomainReward(terms, float(entry.get("min_reward", 0.0)))
        # by the function, not the spec: "rewards.code:code" or a file re-exporting it runs model code too
        for term in (t for reward in domains.values() for t in reward.terms if t.fn is code_verifier):
            # before any rollout, not as a verifier error in the first step: no sandbox, no code runs
            require_sandbox(bool(term.kwargs.get("allow_unsandboxed", False)))
        missing = sorted({e["domain"] for e in examples} - set(domains))
        if missing:
            raise RewardSpecError(f"no verifier configured for domain(s) {missing}; add them under 'rewards'")
        return cls(domains, VerifierPool(workers, timeout_s, memory_mb) if workers else None)

    def score(self, completions: Sequence[str], examples: Sequence[Mapping]) -> list[float]:
        if len(completions) != len(examples):
            raise ValueError(f"{len(completions)} completions for {len(examples)} examples")
        jobs = [(i, term, completion, example) for i, (completion, example) in enumerate(zip(completions, examples))
                for term in self.domains[example["domain"]].terms]
        if self.pool is not None:
            outcomes = self.pool.run([Call(t.spec, t.kwargs, c, dict(e)) for _, t, c, e in jobs])
        else:
            outcomes = [self._in_process(t, c, e) for _, t, c, e in jobs]
        values: list[list[tuple[float, float | None]]] = [[] for _ in completions]
        failed = [False] * len(completions)
        for (i, term, _completion, example), outcome in zip(jobs, outcomes):
            if outcome.status == "ok" and outcome.value is not None and not math.isfinite(outcome.value):
                # a NaN reward would pass as a score, poison the group's advantages and the curriculum's posteriors
                outcome = Outcome(None, "error", f"returned a non-finite reward ({outcome.value})")
            if outcome.status != "ok":
                if not failed[i]:  # one failed reward however many of its terms failed: shares stay <= 1
                    counter = self.timeouts if outcome.status == "timeout" else self.errors
                    counter[example["domain"]] += 1
                self.last_failure[example["domain"]] = f"{term.spec}: {outcome.status}: {outcome.message}"
                log.warning("verifier %s for %s: %s on example %s: %s", term.spec, example["domain"],
                            outcome.status, example.get("id"), outcome.message)
                failed[i] = True
            values[i].append((term.weight, outcome.value))
        scores = []
        for i, example in enumerate(examples):
            floor = self.domains[example["domain"]].min_reward
            applicable = [(w, v) for w, v in values[i] if v is not None]
            scores.append(floor if failed[i] or not applicable else sum(w * v for w, v in applicable))
        return scores

    @staticmethod
    def _in_process(term: Term, completion: str, example: Mapping) -> Outcome:
        try:
            value = term.fn(completion, example, **term.kwargs)
            return Outcome(None if value is None else float(value), "ok")
        except Exception as exc:  # a verifier bug must not end a long run
            return Outcome(None, "error", f"{type(exc).__name__}: {exc}")

    def failures(self) -> Counter:
        """Errors and timeouts so far, per domain."""
        return self.errors + self.timeouts

    def failure_summary(self) -> str | None:
        """One line for the end of offline scoring (``rlcs eval``, ``rlcs grade``); None without failures."""
        failures = self.failures()
        if not failures:
            return None
        return (f"{sum(failures.values())} verifier failures, scored as the domain's min_reward: {dict(failures)} "
                f"(last: {self.last_failure})")

    def metrics(self) -> dict[str, float]:
        out = {}
        for domain in self.domains:
            out[f"reward/{domain}/errors"] = self.errors[domain]
            out[f"reward/{domain}/timeouts"] = self.timeouts[domain]
        return out

    @contextlib.contextmanager
    def counted_apart(self):
        """Failures scored inside the block go to the yielded Counter (domain -> errors + timeouts), not
        to the counters ``metrics()`` reports, e.g. so held-out scoring does not show as training failures."""
        kept = (self.errors, self.timeouts, self.last_failure)
        self.errors, self.timeouts, self.last_failure = Counter(), Counter(), {}
        apart = Counter()
        try:
            yield apart
        finally:
            apart.update(self.errors)
            apart.update(self.timeouts)
            self.errors, self.timeouts, self.last_failure = kept

    def close(self) -> None:
        if self.pool is not None:
            self.pool.close()


def _check_kwargs(fn: RewardFn, kwargs: dict, where: str, spec: str) -> None:
    """A misspelt keyword would fail every call as a verifier error, counted only once rollouts are scored;
    refuse it while the recipe is read."""
    try:
        signature = inspect.signature(fn, follow_wrapped=False)  # a wrapper may take keywords of its own
    except (TypeError, ValueError):  # a builtin or C callable: nothing to check against
        return
    try:
        signature.bind("completion", {}, **kwargs)
    except TypeError as exc:
        accepted = [name for name in list(signature.parameters)[2:]
                    if signature.parameters[name].kind in (inspect.Parameter.KEYWORD_ONLY,
                                                           inspect.Parameter.POSITIONAL_OR_KEYWORD)]
        raise RewardSpecError(f"{where}.kwargs: {spec} does not take {sorted(kwargs)} ({exc}); "
                              f"it takes {accepted or 'no keywords'}") from None
