"""Metrics go to ``<output_dir>/metrics.jsonl`` and, with the same keys, to wandb."""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

from accelerate import Accelerator
from pydantic import BaseModel


class MetricsLogger:
    """``resume_step``: continuing a run; rows logged after that step (by the interrupted run, past its
    last checkpoint) are dropped so no step appears twice, and the wandb run ``run_id`` is rewound to
    that step and continues (wandb's ``resume_from``)."""

    def __init__(self, accelerator: Accelerator, recipe: BaseModel, stage: str, resume_step: int | None = None,
                 run_id: str | None = None):
        self.accelerator = accelerator
        self.path = Path(recipe.output_dir) / "metrics.jsonl"
        self.started = time.time()
        self.trackers_on = False
        self.run_id = run_id
        if not accelerator.is_main_process:
            return
        self.trackers_on = recipe.logging.wandb
        if resume_step is None and self.path.exists():
            print(f"note: starting a fresh run; replacing {self.path}")
            self.path.unlink()
        elif resume_step is not None:
            truncate_after(self.path, resume_step)
        if recipe.logging.wandb:
            wandb_kwargs = {"dir": recipe.output_dir, "name": recipe.logging.run_name, "job_type": stage}
            if run_id and resume_step is not None:
                # Rewind the run to the checkpoint: the steps the crashed run logged past it are dropped
                # on the server, as they were from metrics.jsonl, so the re-logged steps are accepted.
                wandb_kwargs["resume_from"] = f"{run_id}?_step={resume_step}"
            config = {"stage": stage, **recipe.model_dump(mode="json")}
            try:
                accelerator.init_trackers(recipe.logging.project, config=config, init_kwargs={"wandb": wandb_kwargs})
            except Exception as exc:  # rewind is not enabled on every wandb server
                if "resume_from" not in wandb_kwargs:
                    raise
                print(f"warning: wandb refused to rewind run {run_id} ({exc}); continuing it without a rewind, so "
                      f"steps after {resume_step} that the interrupted run logged stay in its history")
                wandb_kwargs.pop("resume_from")
                wandb_kwargs.update(id=run_id, resume="allow")
                accelerator.init_trackers(recipe.logging.project, config=config, init_kwargs={"wandb": wandb_kwargs})
            self.run_id = accelerator.get_tracker("wandb", unwrap=True).id

    def log(self, metrics: dict[str, float], step: int) -> None:
        if not self.accelerator.is_main_process:
            return
        clean = {key: _plain(value) for key, value in metrics.items()}
        record = {"step": step, "time/elapsed_s": round(time.time() - self.started, 3), **clean}
        with self.path.open("a") as handle:
            handle.write(json.dumps(record) + "\n")
        if self.trackers_on:
            self.accelerator.log({key: _for_wandb(key, value) for key, value in clean.items()}, step=step)

    def close(self) -> None:
        self.accelerator.end_training()


def _for_wandb(key: str, value):
    """Lists under a ``*_histogram`` key are bin counts over [0, 1]; wandb shows them as a histogram."""
    if key.endswith("_histogram") and isinstance(value, list):
        import numpy as np
        import wandb

        return wandb.Histogram(np_histogram=(value, np.linspace(0, 1, len(value) + 1)))
    return value


def _plain(value):
    value = value.item() if hasattr(value, "item") else value
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)  # JSON has no NaN/inf; keep them visible rather than dropping the key
    return value


def truncate_after(path: Path, step: int) -> None:
    """Keep only the JSONL records with ``step`` at most ``step`` (a resumed run rewrites the rest)."""
    if not path.exists():
        return
    kept = [line for line in path.read_text().splitlines() if line.strip() and json.loads(line)["step"] <= step]
    path.write_text("".join(line + "\n" for line in kept))


def read_metrics(output_dir: str | Path) -> list[dict]:
    path = Path(output_dir) / "metrics.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def progress_bar(total: int, desc: str, enabled: bool):
    """tqdm on the main process; in a log file (no terminal) it updates every 30 s, not every step."""
    import sys

    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, disable=not enabled, mininterval=0.1 if sys.stderr.isatty() else 30.0)
