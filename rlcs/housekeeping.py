"""What every training loop does around its steps, in one place for the LM loop and the RL loop:
resume from the newest complete checkpoint, the metrics logger, periodic and SIGTERM checkpoints,
the streak of non-finite losses, and teardown.

Every method is called on every process at the same point of the loop: checkpoints and the
preemption check are collective.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

from rlcs.guards import NonFiniteLoss, Preemption
from rlcs.metrics import MetricsLogger
from rlcs.resume import TrainState, find_checkpoint, load_checkpoint, save_checkpoint


class RunHousekeeping:
    """``saved_with_checkpoint``: objects with ``state_dict``/``load_state_dict`` (the LR schedule, the
    sampler) restored on resume along with the model, the optimizer and ``self.state``."""

    def __init__(self, accelerator, recipe, stage: str, model, tokenizer, saved_with_checkpoint: list):
        self.accelerator, self.recipe, self.stage = accelerator, recipe, stage
        self.model, self.tokenizer = model, tokenizer
        self.output_dir = Path(recipe.output_dir)
        self.state = TrainState()
        accelerator.register_for_checkpointing(*saved_with_checkpoint, self.state)
        self.resumed_from = find_checkpoint(self.output_dir, recipe.train.resume)
        if self.resumed_from is not None:
            load_checkpoint(accelerator, self.resumed_from)
            accelerator.print(f"[{stage}] resumed from {self.resumed_from} at step {self.state.step}")
        self.logger = MetricsLogger(accelerator, recipe, stage,
                                    resume_step=self.state.step if self.resumed_from else None,
                                    run_id=self.state.wandb_run_id)
        self.state.wandb_run_id = self.logger.run_id
        self.preemption = Preemption()
        self.nonfinite_in_row = 0
        self.on_close: list[Callable[[], None]] = []

    def checkpoint_now(self) -> None:
        save_checkpoint(self.accelerator, self.output_dir, self.state, self.model, self.tokenizer,
                        self.recipe.train.keep_checkpoints)

    def count_nonfinite(self, skipped: int) -> None:
        """``skipped``: non-finite losses since the last call (a micro-batch in the LM loop, a step in RL)."""
        self.state.nonfinite_skipped += skipped
        self.nonfinite_in_row = self.nonfinite_in_row + 1 if skipped else 0

    def end_of_step(self, last: bool = False) -> None:
        """After an optimizer step: stop (with a checkpoint) after too many non-finite losses in a row; the
        periodic checkpoint; on SIGTERM (any process) a checkpoint and exit status 143."""
        step, every = self.state.step, self.recipe.train.save_every
        if self.nonfinite_in_row >= self.recipe.train.max_nonfinite_in_row:
            self.checkpoint_now()
            raise NonFiniteLoss(f"[{self.stage}] non-finite losses {self.nonfinite_in_row} times in a row at step "
                                f"{step}; wrote a checkpoint and stopped (lower optim.lr, or check the data and "
                                "the rewards)")
        preempted = self.preemption.requested(self.accelerator)
        if (every and step % every == 0 and not last) or preempted:
            self.checkpoint_now()
        if preempted:
            self.accelerator.print(f"[{self.stage}] SIGTERM: checkpoint written at step {step}; exiting")
            self.close()
            sys.exit(143)

    def close(self) -> None:
        self.preemption.restore()
        for close in self.on_close:
            close()
        self.logger.close()
