"""Hugging Face format model directories, written atomically (full training checkpoints: rlcs/resume.py).

Under ZeRO-3 each rank holds a shard; ``get_state_dict`` gathers the full
weights (every rank must call it), and only the main process writes.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

from accelerate import Accelerator
from transformers import PreTrainedTokenizerBase

STEP_DIR = re.compile(r"^step-(\d+)$")


def save_model(accelerator: Accelerator, model, tokenizer: PreTrainedTokenizerBase, directory: str | Path,
               extra: dict | None = None) -> Path:
    directory = Path(directory)
    state_dict = accelerator.get_state_dict(model)
    if accelerator.is_main_process:
        partial = directory.with_name(directory.name + ".partial")
        shutil.rmtree(partial, ignore_errors=True)
        accelerator.unwrap_model(model).save_pretrained(partial, state_dict=state_dict, is_main_process=True)
        tokenizer.save_pretrained(partial)
        if extra is not None:
            (partial / "rlcs_state.json").write_text(json.dumps(extra, indent=2))
        if directory.exists():
            shutil.rmtree(directory)
        os.replace(partial, directory)
    accelerator.wait_for_everyone()
    return directory


def list_step_checkpoints(root: str | Path) -> list[Path]:
    """Complete ``step-N`` directories, oldest first (``.partial`` ones never match)."""
    root = Path(root)
    if not root.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in root.iterdir() if p.is_dir() and (m := STEP_DIR.match(p.name))]
    return [p for _, p in sorted(found)]
