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
        if not accelerator.is_main_process:
            return
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
        self.accelerator.log(clean, step=step)

    def close(self) -> None:
        self.accelerator.end_training()


def _plain(value):
    value = value.item() if hasattr(value, "item") else value
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)  # JSON has no NaN/inf; keep them visible rather than dropping the key
    return value


def read_metrics(output_dir: str | Path) -> list[dict]:
    path = Path(output_dir) / "metrics.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
