"""AdamW and its learning-rate schedule from the recipe's ``optim`` section."""

from __future__ import annotations

import torch
from transformers import get_constant_schedule_with_warmup, get_cosine_with_min_lr_schedule_with_warmup

from rlcs.config import OptimConfig
from rlcs.vision import parameter_role


def build_optimizer(model: torch.nn.Module, config: OptimConfig) -> torch.optim.Optimizer:
    """No weight decay on biases and norm weights (the 1-D parameters), as is standard. An image-text
    model's vision tower and projector take ``lr_vision`` / ``lr_projector`` where set (the schedule
    scales every group's own lr)."""
    lrs = {"decoder": config.lr, "vision": config.lr_vision or config.lr, "projector": config.lr_projector or config.lr}
    # the decoder's two groups exist even when empty (LoRA has no trainable 1-D parameters): the number of
    # groups is part of a saved optimizer state, and checkpoints from before the role groups have two
    groups: dict[tuple[str, bool], list[torch.nn.Parameter]] = {("decoder", True): [], ("decoder", False): []}
    present: set[str] = set()
    trainable: set[str] = set()
    for name, parameter in model.named_parameters():
        role = parameter_role(name)
        present.add(role)
        if parameter.requires_grad:
            trainable.add(role)
            groups.setdefault((role, parameter.ndim >= 2), []).append(parameter)
    for key, role in (("lr_vision", "vision"), ("lr_projector", "projector")):
        if getattr(config, key) is None:
            continue
        if role not in present:
            raise ValueError(f"optim.{key}: this model has no {role} parameters (set it for image-text models only)")
        if role not in trainable:
            raise ValueError(f"optim.{key}: no {role} parameter trains (model.freeze_vision or LoRA froze them), "
                             "so it would have no effect")
    param_groups = [{"params": params, "lr": lrs[role], "weight_decay": config.weight_decay if decays else 0.0,
                     "role": role} for (role, decays), params in sorted(groups.items(), key=_group_order)]
    return torch.optim.AdamW(param_groups, lr=config.lr, betas=config.betas, eps=config.eps)


def _group_order(item) -> tuple[int, bool]:
    """Decoder groups first, decayed before not decayed: a text model's two groups keep the order older
    checkpoints saved their optimizer state in."""
    (role, decays), _ = item
    return ("decoder", "projector", "vision").index(role), not decays


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
