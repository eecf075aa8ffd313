"""`rlcs plan` for the real-model recipes, and for GLM-4.1V-9B against its published fine-tuning memory.

    python benchmarks/plan_recipes.py [--write-headers]

No GPU, no weights, no network: each model is built on the meta device from its config, or offline
from its published sizes (rlcs/plan.py PUBLISHED_SIZES). Every recipe is planned with the launcher
its header names (4 GPUs, ZeRO-3, bf16) and, as the data does not exist yet, prompts of up to 1024
text tokens and images of up to 1024 vision patches (a 448x448 image) per sequence. An RL recipe
starts from its SFT stage's output, which has the SFT recipe's model architecture.
``--write-headers`` rewrites each recipe's "Expected peak memory per GPU" line with the figure.

The published figures (../shared/FIELD.md: LLaMA-Factory on A100, batch 1 per GPU, total over the
GPUs) are compared with `rlcs plan` for GLM-4.1V-9B (vision tower included) with the same strategy:
2048 tokens per sequence of which 256 are image tokens (1024 patches), gradient checkpointing, AdamW,
bf16 (DeepSpeed mixed precision for the full runs; plain bf16 weights and fp32 adapters of rank 8 on
every linear layer for LoRA, which runs without DeepSpeed on one GPU).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import re
import sys
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # before huggingface_hub is imported: published sizes, no network
sys.path.insert(0, str(Path(__file__).resolve().parent))
from report import write_section  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
FAMILIES = ("glm4-9b", "glm4v-9b", "qwen2.5-vl-7b")
LAUNCHER = re.compile(r"^#\s+\./launch\.sh (\S+) --accelerate (\S+)", re.M)
HEADER = re.compile(r"^# Expected peak memory per GPU.*$", re.M)
PUBLISHED = [  # setup, GPUs, freeze_vision, LoRA, ZeRO stage, published total GB
    ("LoRA, ViT frozen", 1, True, True, 0, 21),
    ("full, ZeRO-2, ViT frozen", 4, True, False, 2, 280),
    ("full, ZeRO-2, ViT trained", 4, False, False, 2, 304),
    ("full, ZeRO-3, ViT frozen", 4, True, False, 3, 192),
    ("full, ZeRO-3, ViT trained", 4, False, False, 3, 210),
]


def real_model_recipes() -> list[Path]:
    return sorted(p for p in (REPO / "recipes").glob("*/*.yaml")
                  if p.stem in ("sft", "rl") and p.parent.name.startswith(FAMILIES))


def start_model(recipe: Path) -> str:
    """The model a recipe's stage starts from: its own model.path, or for a stage chained from the
    previous one (outputs/...), the SFT recipe's starting model in the same folder."""
    import yaml

    path = yaml.safe_load(recipe.read_text())["model"]["path"]
    if not str(path).startswith("outputs/"):
        return path
    return yaml.safe_load((recipe.parent / "sft.yaml").read_text())["model"]["path"]


def launcher(recipe: Path) -> str:
    found = LAUNCHER.search(recipe.read_text())
    if found is None:
        raise ValueError(f"{recipe}: no '#   ./launch.sh FOLDER --accelerate CONFIG' line in its header")
    return found.group(2)


def plan_recipe(recipe: Path) -> tuple[float, str, str]:
    """(peak GiB per GPU, phase, the printed plan) of ``rlcs plan`` on a shipped recipe."""
    from rlcs.plan import main

    args = argparse.Namespace(recipe=str(recipe), overrides=[], accelerate=str(REPO / launcher(recipe)),
                              stage=None, model=start_model(recipe), gpu_memory=80.0, prompt_tokens=1024,
                              image_patches=1024)  # stated, so the figure does not depend on data written later
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        main(args)
    text = printed.getvalue()
    peak = re.search(r"peak per GPU: ([0-9.]+) GiB \((.*)\)", text)
    return float(peak.group(1)), peak.group(2), text


def header_line(recipe: Path, gib: float, phase: str, images: bool) -> str:
    prompts = "prompts up to 1024 text tokens" + (" + 1024 image patches" if images else "")
    what = ("images up to 1024 patches" if images else "data.seq_len tokens") if recipe.stem == "sft" else prompts
    return f"# Expected peak memory per GPU (rlcs plan, {what}): {gib:.1f} GiB ({phase})"


def published_rows() -> tuple[list[str], int]:
    from types import SimpleNamespace

    from rlcs.config import LoraConfig
    from rlcs.plan import GIB, Launch, plan_terms, read_architecture

    rows, parameters = [], 0
    for setup, gpus, freeze, lora, stage, published_gb in PUBLISHED:
        adapters = LoraConfig(r=8, alpha=16) if lora else None
        with contextlib.redirect_stdout(io.StringIO()):
            arch = read_architecture("zai-org/GLM-4.1V-9B-Thinking", freeze_vision=freeze, lora=adapters)
        parameters = parameters or (arch.parameters if adapters is None else 0)  # the model without adapters
        recipe = SimpleNamespace(model=SimpleNamespace(dtype="bfloat16", gradient_checkpointing=True, lora=adapters),
                                 train=SimpleNamespace(micro_batch_size=1), data=SimpleNamespace(seq_len=2048))
        launch = Launch(processes=gpus, deepspeed=stage > 0, zero_stage=stage, mixed_precision=stage > 0)
        train, _ = plan_terms(recipe, "sft", arch, launch, 0, image_patches=1024)
        per_gpu = sum(t.bytes for t in train)
        total_gb = gpus * per_gpu / 1e9
        rows.append(f"| {setup} | {gpus} | {published_gb} GB | {total_gb:.0f} GB ({per_gpu / GIB:.1f} GiB per GPU) | "
                    f"{(total_gb - published_gb) / published_gb:+.0%} |")
        print(rows[-1], flush=True)
    return rows, parameters


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--write-headers", action="store_true", help="rewrite each recipe's expected-memory line")
    args = parser.parse_args()
    rows = []
    for recipe in real_model_recipes():
        gib, phase, printed = plan_recipe(recipe)
        name = recipe.relative_to(REPO)
        rows.append(f"| `{name}` | `{start_model(recipe)}` | `{launcher(recipe)}` | {gib:.1f} GiB ({phase}) |")
        print(rows[-1], flush=True)
        if args.write_headers:
            text = recipe.read_text()
            if not HEADER.search(text):
                raise ValueError(f"{name}: no '# Expected peak memory per GPU' line to rewrite")
            line = header_line(recipe, gib, phase, "vision activations" in printed)
            recipe.write_text(HEADER.sub(line.replace("\\", r"\\"), text))
    published, parameters = published_rows()
    write_section("plan_recipes", f"""
## `rlcs plan` for the real-model recipes, and GLM-4.1V-9B against its published fine-tuning memory

Command: `python benchmarks/plan_recipes.py` (no GPU, weights or network: models built on the meta device
from their published sizes). Each recipe with the launcher its header names; the data does not exist yet,
so prompts of up to 1024 text tokens and images of up to 1024 vision patches (448x448) per sequence. RL
recipes are planned on their SFT stage's starting architecture. Each recipe's header states its figure
(`tests/test_recipes.py` checks that it is this one).

| recipe | model | launcher | peak per GPU (phase) |
|---|---|---|---|
{chr(10).join(rows)}

GLM-4.1V-9B ({parameters / 1e9:.2f}B parameters, vision tower included) against the fine-tuning memory
GLM-4.1V published (../shared/FIELD.md: LLaMA-Factory, A100, batch 1 per GPU, minimum total over the GPUs).
`rlcs plan` with the same strategy: 2048 tokens per sequence, 256 of them image tokens (1024 vision patches), gradient
checkpointing, AdamW; full runs in bf16 with DeepSpeed mixed precision, LoRA (rank 8 on every linear layer
outside the ViT, fp32 adapters as peft keeps them) with bf16 weights on one GPU without DeepSpeed.

| setup | GPUs | published | rlcs plan | plan vs published |
|---|---|---|---|---|
{chr(10).join(published)}
""")


if __name__ == "__main__":
    main()
