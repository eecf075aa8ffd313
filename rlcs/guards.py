"""Guards for long runs: non-finite losses, and preemption (SIGTERM).

Both decisions are collective: every process learns whether any process saw a
non-finite loss or a SIGTERM, so all skip, checkpoint or stop at the same step
(ZeRO-3 hangs if one process leaves a collective the others enter).
"""

from __future__ import annotations

import signal

import torch


class NonFiniteLoss(RuntimeError):
    """Too many non-finite losses in a row; a final checkpoint was written before raising."""


def finite_or_zeroed(accelerator, loss: torch.Tensor) -> tuple[torch.Tensor, bool]:
    """(loss to back-propagate, skipped). When any process's loss is NaN or infinite, every process
    back-propagates a zero instead, so the micro-batch contributes no gradient and the collectives
    stay aligned."""
    bad = torch.tensor([0.0 if torch.isfinite(loss).all() else 1.0], device=loss.device)
    if accelerator.reduce(bad, reduction="sum").item() == 0:
        return loss, False
    return torch.where(torch.isfinite(loss), loss, torch.zeros_like(loss)) * 0.0, True


class Preemption:
    """Remembers a SIGTERM; ``requested()`` tells every process whether any process got one."""

    def __init__(self):
        self.received = False
        self.previous = signal.signal(signal.SIGTERM, self._handle)

    def _handle(self, signum, frame) -> None:
        self.received = True

    def requested(self, accelerator) -> bool:
        flag = torch.tensor([1.0 if self.received else 0.0], device=accelerator.device)
        return accelerator.reduce(flag, reduction="sum").item() > 0

    def restore(self) -> None:
        signal.signal(signal.SIGTERM, self.previous)
