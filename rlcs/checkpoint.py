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
from transformers import PreTrainedTokenizerBase, ProcessorMixin

from rlcs.lora import adapter_parameters, is_lora, merged_parameters

STEP_DIR = re.compile(r"^step-(\d+)$")


def save_model(accelerator: Accelerator, model, tokenizer: PreTrainedTokenizerBase | ProcessorMixin,
               directory: str | Path, extra: dict | None = None) -> Path:
    """A LoRA model is written twice: merged into ``directory`` (a plain model the next stage, eval and
    vLLM load) and as the adapter alone in ``directory/adapter``."""
    directory = Path(directory)
    unwrapped = accelerator.unwrap_model(model)
    lora = is_lora(unwrapped)
    state_dict = None if lora else accelerator.get_state_dict(model)
    if lora:  # every process walks the iterators: under ZeRO-3 each gather is a collective
        merged = _on_main_in_cpu_memory(accelerator, merged_parameters(model, accelerator))
        adapter = _on_main_in_cpu_memory(accelerator, adapter_parameters(model, accelerator))
    if accelerator.is_main_process:
        partial = directory.with_name(directory.name + ".partial")
        shutil.rmtree(partial, ignore_errors=True)
        if lora:
            unwrapped.get_base_model().save_pretrained(partial, state_dict=merged, is_main_process=True)
            unwrapped.save_pretrained(partial / "adapter", state_dict=adapter, is_main_process=True)
        else:
            unwrapped.save_pretrained(partial, state_dict=state_dict, is_main_process=True)
        tokenizer.save_pretrained(partial)
        if extra is not None:
            (partial / "rlcs_state.json").write_text(json.dumps(extra, indent=2))
        if directory.exists():
            shutil.rmtree(directory)
        os.replace(partial, directory)
    accelerator.wait_for_everyone()
    return directory


def _on_main_in_cpu_memory(accelerator: Accelerator, weights) -> dict | None:
    """Walk ``weights`` on every process (its gathers are collectives); keep host copies on the main
    process only, so no accelerator ever holds a second copy of the model while saving."""
    kept = {}
    for name, tensor in weights:
        if accelerator.is_main_process:
            kept[name] = tensor.detach().to("cpu", copy=True)
    return kept if accelerator.is_main_process else None


def list_step_checkpoints(root: str | Path) -> list[Path]:
    """Complete ``step-N`` directories, oldest first (``.partial`` ones never match)."""
    root = Path(root)
    if not root.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in root.iterdir() if p.is_dir() and (m := STEP_DIR.match(p.name))]
    return [p for _, p in sorted(found)]
