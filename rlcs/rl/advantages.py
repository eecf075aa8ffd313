"""Group-relative advantages (GRPO).

Each example's G completions form a group; a completion's advantage is its
reward minus the group mean, divided by the group's standard deviation unless
``scale_by_std`` is off (Dr.GRPO argues the division biases toward easy and
hard prompts). A group whose rewards are all equal carries no signal: its
advantages are exactly zero.
"""

from __future__ import annotations

import torch


def group_advantages(rewards: torch.Tensor, scale_by_std: bool = True, eps: float = 1e-6) -> torch.Tensor:
    """``rewards`` is ``[groups, G]``; returns advantages of the same shape.

    The standard deviation is the population one (divide by G), so a group of
    two with rewards 0 and 1 gets advantages -1 and +1.
    """
    if rewards.ndim != 2:
        raise ValueError(f"rewards must be [groups, G], got shape {tuple(rewards.shape)}")
    centred = rewards - rewards.mean(dim=1, keepdim=True)
    std = rewards.std(dim=1, unbiased=False, keepdim=True)
    zero_variance = std <= eps
    if scale_by_std:
        centred = centred / std.clamp_min(eps)
    return torch.where(zero_variance, torch.zeros_like(centred), centred)


def zero_variance_mask(rewards: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """``[groups]`` booleans: True where every completion got the same reward."""
    return rewards.std(dim=1, unbiased=False) <= eps
