"""Full training checkpoints and exact resume.

A checkpoint ``<output_dir>/checkpoints/step-N/`` holds:
- ``state/``: accelerate's ``save_state``: model and optimizer (DeepSpeed's own
  sharded checkpoint under ZeRO), the RNG states of every process, and the
  registered objects: the LR schedule, the sampler (RL) and ``TrainState``;
- ``model/``: the weights gathered into a Hugging Face directory (with tokenizer),
  loadable by ``from_pretrained`` on its own;
- ``trainer_state.json``: step counters and the wandb run id, readable without torch.
It is written under ``step-N.partial`` and renamed when every process has
finished, so a crash mid-write never leaves a directory that looks complete.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from accelerate import Accelerator

from rlcs.checkpoint import list_step_checkpoints, save_model

CHECKPOINTS = "checkpoints"


@dataclass
class TrainState:
    """Counters every process agrees on; saved with the checkpoint and restored on resume."""

    step: int = 0
    epoch: int = 0
    batches_in_epoch: int = 0  # LM stages: micro-batches of the current epoch already consumed
    rollouts_spent: int = 0  # RL
    nonfinite_skipped: int = 0
    wandb_run_id: str | None = None

    def state_dict(self) -> dict:
        return asdict(self)

    def load_state_dict(self, state: dict) -> None:
        for key, value in state.items():
            setattr(self, key, value)


def save_checkpoint(accelerator: Accelerator, output_dir: str | Path, state: TrainState, model, tokenizer,
                    keep: int) -> Path:
    """Collective: every process must call it at the same step."""
    started = time.time()
    root = Path(output_dir) / CHECKPOINTS
    final, partial = root / f"step-{state.step}", root / f"step-{state.step}.partial"
    if accelerator.is_main_process:
        shutil.rmtree(partial, ignore_errors=True)
        partial.mkdir(parents=True)
    accelerator.wait_for_everyone()
    accelerator.save_state(str(partial / "state"))
    save_model(accelerator, model, tokenizer, partial / "model")
    if accelerator.is_main_process:
        (partial / "trainer_state.json").write_text(json.dumps(state.state_dict(), indent=2))
        if final.exists():
            shutil.rmtree(final)
        os.replace(partial, final)
        for old in list_step_checkpoints(root)[:-keep]:
            shutil.rmtree(old)
        _record(root, "save", state.step, time.time() - started, final)
    accelerator.wait_for_everyone()
    return final


def find_checkpoint(output_dir: str | Path, resume: str) -> Path | None:
    """``resume``: "auto" (newest complete checkpoint, if any), "never", or a checkpoint path."""
    if resume == "never":
        return None
    if resume != "auto":
        path = Path(resume)
        if not (path / "trainer_state.json").is_file() or not (path / "state").is_dir():
            raise FileNotFoundError(f"resume: {resume} is not a complete rlcs checkpoint")
        return path
    complete = [p for p in list_step_checkpoints(Path(output_dir) / CHECKPOINTS)
                if (p / "trainer_state.json").is_file() and (p / "state").is_dir()]
    return complete[-1] if complete else None


def load_checkpoint(accelerator: Accelerator, path: Path) -> None:
    """Restores everything registered with ``accelerator.register_for_checkpointing`` too."""
    started = time.time()
    accelerator.load_state(str(path / "state"))
    if accelerator.is_main_process:
        step = json.loads((path / "trainer_state.json").read_text())["step"]
        _record(path.parent, "resume", step, time.time() - started, path)


def _record(root: Path, event: str, step: int, seconds: float, path: Path) -> None:
    """``checkpoints/timings.jsonl``: how long each save and resume took, and the checkpoint's size."""
    size = sum(f.stat().st_size for f in path.rglob("*") if f.is_file())
    with (root / "timings.jsonl").open("a") as handle:
        handle.write(json.dumps({"event": event, "step": step, "seconds": round(seconds, 3), "bytes": size}) + "\n")
