"""Metrics go to ``<output_dir>/metrics.jsonl`` and, with the same keys, to wandb."""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

from accelerate import Accelerator
from pydantic import BaseModel


class MetricsLogger:
    def __init__(self, accelerator: Accelerator, recipe: BaseModel, stage: str):
        self.accelerator = accelerator
        self.path = Path(recipe.output_dir) / "metrics.jsonl"
        self.started = time.time()
        self.trackers_on = False
        if not accelerator.is_main_process:
            return
        self.trackers_on = recipe.logging.wandb
        if self.path.exists():
            print(f"note: starting a fresh run; replacing {self.path}")
            self.path.unlink()
        if recipe.logging.wandb:
            accelerator.init_trackers(
                recipe.logging.project,
                config={"stage": stage, **recipe.model_dump(mode="json")},
                init_kwargs={"wandb": {"dir": recipe.output_dir, "name": recipe.logging.run_name, "job_type": stage}},
            )

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


def read_metrics(output_dir: str | Path) -> list[dict]:
    path = Path(output_dir) / "metrics.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def progress_bar(total: int, desc: str, enabled: bool):
    """tqdm on the main process; in a log file (no terminal) it updates every 30 s, not every step."""
    import sys

    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, disable=not enabled, mininterval=0.1 if sys.stderr.isatty() else 30.0)
