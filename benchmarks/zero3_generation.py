"""Rollout time under 2-process ZeRO-3: DeepSpeed's module hooks removed while generating (rlcs
today) versus the previous path (parameters gathered up front, hooks left in place) and no gather.

    python benchmarks/zero3_generation.py [--model outputs/tiny/sft/model] [--rounds 5]

It relaunches itself under `accelerate launch` with recipes/accelerate/cpu_zero3.yaml. Each process
rolls out the same number of prompts (8 tiny-suite RL prompts x G=8, the tiny recipe's rollout
settings) per round; each path runs the same rounds from the same seeds, so the tokens must agree.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))


def worker(args) -> None:
    import torch
    from accelerate import Accelerator
    from transformers import AutoModelForCausalLM, AutoTokenizer

    import rlcs.engine as engine_module
    from rlcs.chat import example_prompt
    from rlcs.config import RLRecipe, load_recipe
    from rlcs.data import load_examples
    from rlcs.engine import HFEngine, SamplingParams
    from rlcs.runtime import _cpu_deepspeed_fix

    recipe = load_recipe(REPO / "recipes/tiny/rl.yaml", RLRecipe, [f"model.path={args.model}"])
    accelerator = Accelerator(kwargs_handlers=_cpu_deepspeed_fix())
    accelerator.state.deepspeed_plugin.deepspeed_config["train_micro_batch_size_per_gpu"] = 1
    tokenizer = AutoTokenizer.from_pretrained(args.model)
    model = AutoModelForCausalLM.from_pretrained(args.model)
    model, _ = accelerator.prepare(model, torch.optim.AdamW(model.parameters(), lr=1e-5))
    rank, world = accelerator.process_index, accelerator.num_processes
    examples = load_examples(recipe.data.train)
    params = SamplingParams.from_rollout(recipe.rollout)
    engine = HFEngine(model, tokenizer, accelerator)

    @contextlib.contextmanager
    def gathered_hooks_kept(model, accelerator):  # the path before hook removal
        import deepspeed

        with deepspeed.zero.GatheredParameters(list(model.parameters())):
            yield accelerator.unwrap_model(model)

    @contextlib.contextmanager
    def layer_by_layer(model, accelerator):  # no gather: every decoding step fetches every layer
        yield accelerator.unwrap_model(model)

    paths = {"hooks removed (rlcs)": engine_module.generation_weights, "gathered, hooks kept (before)":
             gathered_hooks_kept, "no gather": layer_by_layer}
    results, tokens = {}, {}
    for name, context in paths.items():
        engine_module.generation_weights = context
        seconds, produced, outputs = [], 0, []
        for round_index in range(args.rounds + 1):  # round 0 warms up
            picked = examples[round_index * 8 * world:(round_index + 1) * 8 * world][rank::world]
            torch.manual_seed(1000 + round_index)
            accelerator.wait_for_everyone()
            started = time.perf_counter()
            completions = engine.generate([example_prompt(tokenizer, e) for e in picked], recipe.rollout.group_size,
                                          params)
            accelerator.wait_for_everyone()
            if round_index:
                seconds.append(time.perf_counter() - started)
                produced += sum(len(c.token_ids) for c in completions)
            outputs.append([c.token_ids for c in completions])
        engine_module.generation_weights = paths["hooks removed (rlcs)"]
        results[name] = {"seconds_per_round": sum(seconds) / len(seconds), "tokens_per_round": produced / args.rounds}
        tokens[name] = outputs
    reference = tokens["hooks removed (rlcs)"]
    for name in paths:
        results[name]["same_tokens"] = tokens[name] == reference
    everyone = [None] * world
    torch.distributed.all_gather_object(everyone, results)
    if accelerator.is_main_process:
        Path(args.out).write_text(json.dumps(everyone))
    accelerator.wait_for_everyone()
    accelerator.end_training()  # destroy the process group before exit, as the rlcs stages do


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", default="outputs/tiny/sft/model")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--out", default="outputs/bench-zero3-generation.json")
    args = parser.parse_args()
    if args.worker:
        worker(args)
        return
    from report import machine, write_section

    command = [sys.executable, "-m", "accelerate.commands.launch", "--config_file",
               str(REPO / "recipes/accelerate/cpu_zero3.yaml"), __file__, "--worker", "--model", args.model,
               "--rounds", str(args.rounds), "--out", args.out]
    subprocess.run(command, cwd=REPO, env={**os.environ, "OMP_NUM_THREADS": "1"}, check=True)
    per_rank = json.loads((REPO / args.out).read_text())
    names = list(per_rank[0])
    seconds = {n: max(r[n]["seconds_per_round"] for r in per_rank) for n in names}
    base = seconds["hooks removed (rlcs)"]
    rows = [f"| {n} | {seconds[n]:.2f} | {sum(r[n]['tokens_per_round'] for r in per_rank) / seconds[n]:.0f} | "
            f"{seconds[n] / base:.2f}x | {'yes' if all(r[n]['same_tokens'] for r in per_rank) else 'NO'} |"
            for n in names]
    write_section("zero3_generation", f"""
## Rollout under 2-process ZeRO-3: hooks removed while generating

Command: `python benchmarks/zero3_generation.py --model {args.model} --rounds {args.rounds}` (accelerate launch,
`recipes/accelerate/cpu_zero3.yaml`: 2 CPU processes, one thread each, gloo). Each round: 8 RL prompts x G=8
per process, the tiny recipe's rollout settings (max_new_tokens 128, force answering, T=1.0), one warm-up
round excluded. "Same tokens": identical completions to the rlcs path for the same seeds. Machine: {machine()}.

| generation path | seconds per round | tokens/s (both processes) | time vs rlcs | same tokens |
|---|---|---|---|---|
{chr(10).join(rows)}

Speed-up of hook removal over the previous path: **{seconds['gathered, hooks kept (before)'] / base:.2f}x**.
""")


if __name__ == "__main__":
    main()
