"""AdamW and its learning-rate schedule from the recipe's ``optim`` section."""

from __future__ import annotations

import torch
from transformers import get_constant_schedule_with_warmup, get_cosine_with_min_lr_schedule_with_warmup

from rlcs.config import OptimConfig


def build_optimizer(model: torch.nn.Module, config: OptimConfig) -> torch.optim.Optimizer:
    """No weight decay on biases and norm weights (the 1-D parameters), as is standard."""
    params = [p for p in model.parameters() if p.requires_grad]
    decay = [p for p in params if p.ndim >= 2]
    no_decay = [p for p in params if p.ndim < 2]
    groups = [{"params": decay, "weight_decay": config.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=config.lr, betas=config.betas, eps=config.eps)


def build_scheduler(optimizer: torch.optim.Optimizer, config: OptimConfig, total_steps: int):
    """Stepped once per optimizer step by the loop (not handed to accelerate, which would
    step it once per process)."""
    warmup = min(config.warmup_steps, max(total_steps - 1, 0))
    if config.schedule == "constant":
        return get_constant_schedule_with_warmup(optimizer, warmup)
    return get_cosine_with_min_lr_schedule_with_warmup(
        optimizer, warmup, total_steps, min_lr_rate=config.min_lr_ratio
    )


def unwrap_optimizer(optimizer) -> torch.optim.Optimizer:
    """The torch optimizer under accelerate's (and DeepSpeed's) wrappers: the schedule drives its
    param groups, which DeepSpeed's ZeRO optimizer reads from."""
    while hasattr(optimizer, "optimizer"):
        optimizer = optimizer.optimizer
    return optimizer
