"""The clipped policy-gradient loss and its aggregation modes, as pure tensor functions.

Per token, with ratio r = exp(logp - logp_old) and advantage A of the token's
completion, the PPO objective is min(r·A, clip(r, 1-eps_low, 1+eps_high)·A).
``eps_high > eps_low`` is DAPO's clip-higher (GLM-4.1V-Thinking uses it too): it
leaves more room to raise unlikely tokens, which keeps entropy from collapsing.
The optional dual clip bounds the objective below by c·A for A < 0, so one
huge ratio on a bad token cannot dominate a batch.

Aggregation over a batch of completions (``mask`` marks completion tokens):
- ``per_sample``: token mean within each completion, then mean over completions
  (the paper's default, found more stable);
- ``token``: mean over all tokens of the batch (DAPO). A batch is split into
  micro-batches and processes whose gradients are averaged, so the loop passes
  ``token_normalizer``: the batch's token count divided by the number of
  micro-batch losses averaged. Each micro-batch then contributes its token sum
  over that, and the average of those is the token mean of the whole batch
  (without it, the mean of per-micro-batch means is TRL's ``bnpo``);
- ``seq_sum_norm``: token sum per completion divided by a constant
  ``max_tokens``, then mean over completions (Dr.GRPO, no length bias).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch

Aggregation = Literal["per_sample", "token", "seq_sum_norm"]


@dataclass
class LossStats:
    clip_frac_low: float
    clip_frac_high: float
    approx_kl: float


def aggregate(per_token: torch.Tensor, mask: torch.Tensor, mode: Aggregation, max_tokens: int | None = None,
              token_normalizer: float | None = None):
    """Reduce a ``[batch, T]`` per-token quantity to a scalar by the given mode. ``token_normalizer``
    (``token`` mode only) replaces this micro-batch's own token count as the divisor."""
    mask = mask.to(per_token.dtype)
    if mode == "per_sample":
        return ((per_token * mask).sum(-1) / mask.sum(-1).clamp_min(1)).mean()
    if mode == "token":
        divisor = token_normalizer if token_normalizer is not None else mask.sum().clamp_min(1)
        return (per_token * mask).sum() / divisor
    if mode == "seq_sum_norm":
        if not max_tokens:
            raise ValueError("seq_sum_norm needs max_tokens (the generation length limit)")
        return ((per_token * mask).sum(-1) / max_tokens).mean()
    raise ValueError(f"unknown loss aggregation {mode!r}")


def clipped_policy_loss(
    logprobs: torch.Tensor,
    old_logprobs: torch.Tensor,
    advantages: torch.Tensor,
    mask: torch.Tensor,
    eps_low: float = 0.2,
    eps_high: float = 0.28,
    dual_clip: float | None = None,
    aggregation: Aggregation = "per_sample",
    max_tokens: int | None = None,
    token_normalizer: float | None = None,
) -> tuple[torch.Tensor, LossStats]:
    """``logprobs``/``old_logprobs``/``mask``: ``[batch, T]``; ``advantages``: ``[batch]``."""
    log_ratio = logprobs - old_logprobs
    ratio = torch.exp(log_ratio)
    adv = advantages[:, None].to(logprobs.dtype)
    objective = torch.minimum(ratio * adv, torch.clamp(ratio, 1 - eps_low, 1 + eps_high) * adv)
    if dual_clip is not None:
        if dual_clip <= 1:
            raise ValueError("dual_clip must be > 1")
        objective = torch.where(adv < 0, torch.maximum(objective, dual_clip * adv), objective)
    loss = aggregate(-objective, mask, aggregation, max_tokens, token_normalizer)

    with torch.no_grad():
        valid = mask.bool()
        count = valid.sum().clamp_min(1)
        low = ((ratio < 1 - eps_low) & (adv < 0) & valid).sum() / count
        high = ((ratio > 1 + eps_high) & (adv > 0) & valid).sum() / count
        k3 = (ratio - 1) - log_ratio  # unbiased, non-negative estimator of KL(old || new)
        approx_kl = (k3 * valid).sum() / count
    return loss, LossStats(float(low), float(high), float(approx_kl))


def kl_k3(logprobs: torch.Tensor, ref_logprobs: torch.Tensor) -> torch.Tensor:
    """Per-token k3 estimate of KL(policy || reference): exp(ref - logp) - (ref - logp) - 1."""
    delta = ref_logprobs - logprobs
    return torch.exp(delta) - delta - 1


def entropy_from_logits(logits: torch.Tensor) -> torch.Tensor:
    """Per-position entropy of the softmax over the vocabulary."""
    logp = torch.log_softmax(logits.float(), dim=-1)
    return -(logp.exp() * logp).sum(-1)
