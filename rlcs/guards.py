"""Guards for long runs: non-finite losses, and preemption (SIGTERM).

Both decisions are collective: every process learns whether any process saw a
non-finite loss or a SIGTERM, so all skip, checkpoint or stop at the same step
(ZeRO-3 hangs if one process leaves a collective the others enter).
"""

from __future__ import annotations

import signal

import torch
from accelerate.utils import DistributedType


class NonFiniteLoss(RuntimeError):
    """Too many non-finite losses in a row; a final checkpoint was written before raising."""


def any_process_nonfinite(accelerator, loss: torch.Tensor) -> bool:
    bad = torch.tensor([0.0 if torch.isfinite(loss).all() else 1.0], device=loss.device)
    return accelerator.reduce(bad, reduction="sum").item() > 0


class NonFiniteGuard:
    """Per accumulation window. When any process's loss is NaN or infinite, every process
    back-propagates, in place of its loss, an exact zero computed through the model on a one-token
    input (``check``). Zero times the bad loss would not do: when the overflow is inside the graph
    its gradients are 0 * inf = NaN. So the bad micro-batch contributes a zero gradient, every
    process still runs one backward (ZeRO-3 collectives stay aligned), and the window then makes
    no update (``step``). DeepSpeed's engine steps inside ``backward``, so under DeepSpeed the
    window's other micro-batches still update."""

    def __init__(self, accelerator, model):
        self.accelerator, self.model = accelerator, model
        self.engine_steps_itself = accelerator.distributed_type == DistributedType.DEEPSPEED
        self.window_skipped = False

    def check(self, loss: torch.Tensor) -> tuple[torch.Tensor, bool]:
        """(loss to back-propagate, skipped)."""
        if not any_process_nonfinite(self.accelerator, loss):
            return loss, False
        self.window_skipped = True
        token = torch.zeros((1, 1), dtype=torch.long, device=self.accelerator.device)
        return self.model(input_ids=token, use_cache=False).logits.float().sum() * 0.0, True

    def step(self, optimizer) -> None:
        """``optimizer.step()`` and ``zero_grad()``, except at the end of a window that had a non-finite loss."""
        sync = self.accelerator.sync_gradients
        if not (sync and self.window_skipped and not self.engine_steps_itself):
            optimizer.step()
        optimizer.zero_grad()
        if sync:
            self.window_skipped = False


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
