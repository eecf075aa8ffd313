"""Group-relative advantages (GRPO).

Each example's G completions form a group; a completion's advantage is its
reward minus the group mean, divided by the group's standard deviation unless
``scale_by_std`` is off (Dr.GRPO argues the division biases toward easy and
hard prompts). A group whose rewards are all equal carries no signal: its
advantages are exactly zero. "Equal" is up to ``rtol`` of the reward scale (the
group's largest magnitude, at least 1), so float noise in a partial-credit
verifier (seven 0.5s and one 0.50001) is not blown up to advantages of ±2.6.
"""

from __future__ import annotations

import torch

from rlcs.curriculum.interface import SIGNAL_RTOL, carries_signal


def group_advantages(rewards: torch.Tensor, scale_by_std: bool = True, rtol: float = SIGNAL_RTOL) -> torch.Tensor:
    """``rewards`` is ``[groups, G]``; returns advantages of the same shape.

    The standard deviation is the population one (divide by G), so a group of
    two with rewards 0 and 1 gets advantages -1 and +1.
    """
    if rewards.ndim != 2:
        raise ValueError(f"rewards must be [groups, G], got shape {tuple(rewards.shape)}")
    centred = rewards - rewards.mean(dim=1, keepdim=True)
    std = rewards.std(dim=1, unbiased=False, keepdim=True)
    zero_variance = zero_variance_mask(rewards, rtol)[:, None]
    if scale_by_std:
        centred = centred / std.clamp_min(1e-12)
    return torch.where(zero_variance, torch.zeros_like(centred), centred)


def zero_variance_mask(rewards: torch.Tensor, rtol: float = SIGNAL_RTOL) -> torch.Tensor:
    """``[groups]`` booleans: True where every completion got the same reward, up to ``rtol`` of the
    group's reward scale: the groups that do not ``carries_signal`` (the sampler's rule too)."""
    return torch.tensor([not carries_signal(row, rtol) for row in rewards.tolist()], dtype=torch.bool,
                        device=rewards.device)
