"""`rlcs plan` against measured peak memory (CPU: peak RSS).

    python benchmarks/plan_vs_measured.py [--tiny outputs/tiny]

Measured: each run executes a few steps of a stage in a fresh process (under `accelerate launch` for
the ZeRO-3 rows) and records its peak resident memory (VmHWM) minus its resident memory when the stage
builds its optimizer (data read, model loaded): what training took beyond the loaded weights. The
plan's figure is its peak minus the same loaded weights.
Runs: the tiny recipes' SFT and RL stages, and a 25M-parameter model of the same family (built
from a config) for SFT with and without gradient checkpointing, on 1 process and on 2 ZeRO-3
processes. The published GPU figures are compared in benchmarks/plan_recipes.py.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))

MID_MODEL = {"hidden_size": 512, "intermediate_size": 1536, "num_hidden_layers": 8, "num_attention_heads": 8,
             "num_key_value_heads": 2, "head_dim": 64, "max_position_embeddings": 1024}

def rss_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


def worker(stage: str, config: str, overrides: list[str], out: str) -> None:
    """Runs in the measured process. The baseline is taken when the stage builds its optimizer: data
    read, tokenizer and model loaded (partitioned already under ZeRO-3), nothing trained yet; what the
    process holds above it at its peak is what training took beyond the loaded weights."""
    import importlib

    import torch

    from rlcs.config import RLRecipe, SFTRecipe, load_recipe

    torch.set_num_threads(1)
    recipe = load_recipe(config, {"sft": SFTRecipe, "rl": RLRecipe}[stage], overrides)
    module = importlib.import_module({"sft": "rlcs.lm_loop", "rl": "rlcs.stages.rl"}[stage])
    baseline = {}
    build_optimizer = module.build_optimizer

    def noted(*args, **kwargs):
        baseline["kib"] = rss_kib("VmRSS")
        return build_optimizer(*args, **kwargs)

    module.build_optimizer = noted
    importlib.import_module(f"rlcs.stages.{stage}").run(recipe)
    rank = int(os.environ.get("RANK", "0"))
    Path(f"{out}.{rank}").write_text(json.dumps({"rank": rank,
                                                 "delta_bytes": (rss_kib("VmHWM") - baseline["kib"]) * 1024}))


def measure(stage: str, config: str, overrides: list[str], launcher: list[str] | None) -> float:
    """Peak RSS above the loaded model, the largest over processes."""
    with tempfile.TemporaryDirectory() as tmp:
        out = str(Path(tmp) / "rss")
        args = [__file__, "--worker", stage, config, out, "--", *overrides, f"output_dir={tmp}/run"]
        command = ([*launcher, *args] if launcher else [sys.executable, *args])
        # A fixed mmap threshold: every tensor above 128 KiB gets its own mapping, returned to the system
        # when freed, so resident memory follows live tensors rather than what the heap kept.
        env = {**os.environ, "OMP_NUM_THREADS": "1", "WANDB_MODE": "disabled", "MALLOC_MMAP_THRESHOLD_": "131072",
               "MALLOC_TRIM_THRESHOLD_": "131072"}
        subprocess.run(command, cwd=REPO, env=env, check=True, capture_output=True)
        return max(json.loads(p.read_text())["delta_bytes"] for p in Path(tmp).glob("rss.*"))


def planned(stage: str, config: str, overrides: list[str], accelerate: str | None, prompt_tokens: int) -> float:
    """rlcs plan's peak minus the weights as loaded (whole, or this process's part under ZeRO-3)."""
    from rlcs.config import RLRecipe, SFTRecipe, load_recipe
    from rlcs.plan import BYTES, peak_bytes, plan_terms, read_architecture, read_launch

    recipe = load_recipe(config, {"sft": SFTRecipe, "rl": RLRecipe}[stage], overrides)
    arch = read_architecture(recipe.model.path)
    launch = read_launch(accelerate)
    loaded = arch.parameters * BYTES[recipe.model.dtype] // (launch.processes if launch.zero_stage == 3 else 1)
    return peak_bytes(*plan_terms(recipe, stage, arch, launch, prompt_tokens)) - loaded


def build_mid_model(tiny: Path, out: Path) -> Path:
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny / "init/model")
    config = AutoConfig.for_model("glm4", vocab_size=len(tokenizer), pad_token_id=tokenizer.pad_token_id,
                                  eos_token_id=tokenizer.eos_token_id, **MID_MODEL)
    AutoModelForCausalLM.from_config(config).save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        stage, config, out = sys.argv[2:5]
        worker(stage, config, sys.argv[6:], out)
        return
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tiny", default="outputs/tiny", help="a finished ./launch.sh output folder")
    args = parser.parse_args()
    from report import machine, write_section

    from rlcs.plan import GIB

    tiny = REPO / args.tiny
    zero3 = [sys.executable, "-m", "accelerate.commands.launch", "--config_file",
             str(REPO / "recipes/accelerate/cpu_zero3.yaml"), "--main_process_port", "29541"]
    zero3_config = "recipes/accelerate/cpu_zero3.yaml"
    with tempfile.TemporaryDirectory() as tmp:
        mid = build_mid_model(tiny, Path(tmp) / "mid")
        sft = "recipes/tiny/sft.yaml"
        # uniform sampling: every step generates exactly 8 examples x G, the rows the plan sizes the KV cache by
        rl = [f"model.path={tiny}/sft/model", "logging.wandb=false", "data.eval=null", "train.steps=3",
              "train.resume=never", "sampler.name=uniform"]
        from rlcs.config import RLRecipe, load_recipe
        from rlcs.plan import longest_prompt, read_architecture

        prompt = longest_prompt(load_recipe("recipes/tiny/rl.yaml", RLRecipe, rl))
        size = f"{read_architecture(str(tiny / 'sft/model')).parameters / 1e6:.2f}M"
        from rlcs.metrics import read_metrics

        lengths = [m["rollout/length_mean"] for m in read_metrics(tiny / "rl") if "rollout/length_mean" in m]
        length = f"{sum(lengths) / len(lengths):.0f}" if lengths else "unknown"
        quiet = ["logging.wandb=false", "data.eval=null", "train.max_steps=3", "train.resume=never"]
        runs = [
            (f"tiny SFT ({size}), 1 process", "sft", sft, [f"model.path={tiny}/pretrain/model", *quiet], None, 0),
            (f"tiny RL ({size}), 1 process, uniform sampling", "rl", "recipes/tiny/rl.yaml", rl, None, prompt),
            (f"tiny RL ({size}), 1 process, uniform, completions fill the budget", "rl", "recipes/tiny/rl.yaml",
             [*rl, "rollout.max_new_tokens=48", "rollout.force_answer=false"], None, prompt),
            ("25M model SFT, 1 process", "sft", sft, [f"model.path={mid}", *quiet], None, 0),
            ("25M model SFT, gradient checkpointing, 1 process", "sft", sft,
             [f"model.path={mid}", "model.gradient_checkpointing=true", *quiet], None, 0),
            ("25M model SFT, 2 processes ZeRO-3", "sft", sft, [f"model.path={mid}", *quiet], zero3_config, 0),
        ]
        rows = []
        for name, stage, config, overrides, accelerate, prompt_tokens in runs:
            expected = planned(stage, config, overrides, accelerate, prompt_tokens)
            got = measure(stage, config, overrides, zero3 if accelerate else None)
            rows.append(f"| {name} | {got / GIB:.3f} GiB | {expected / GIB:.3f} GiB | {(expected - got) / got:+.0%} |")
            print(rows[-1], flush=True)
    write_section("plan_vs_measured", f"""
## `rlcs plan` against measured peak memory

Command: `python benchmarks/plan_vs_measured.py --tiny {args.tiny}`. Measured on CPU: peak resident memory
of the process running the stage (3 optimizer steps; under ZeRO-3 the larger of the 2 processes) minus its
resident memory when the stage builds its optimizer (data read, model loaded). Planned: `rlcs plan`'s peak
per process for the same recipe, overrides and launcher (RL: the longest prompt of the data, {prompt} tokens)
minus the same loaded weights. Both are what training adds to a loaded model. The RL plan assumes every
completion uses the whole budget and prompts of similar length (logits are taken from the shortest
prompt's end on); the RL runs sample uniformly, so each step generates exactly 8 examples x G=8 rows,
the generate call the plan sizes (with RLCS the plan assumes its largest over-sampling, 3x). The tiny policy's
completions are shorter (mean {length} of 128 tokens in `{args.tiny}/rl`), and the second RL run (48 new
tokens, no force answering) fills its budget as the plan assumes. Machine: {machine()}.

| run | measured | rlcs plan | plan vs measured |
|---|---|---|---|
{chr(10).join(rows)}

GLM-4.1V-9B against its published fine-tuning memory: section `plan_recipes` (benchmarks/plan_recipes.py).
""")


if __name__ == "__main__":
    main()
