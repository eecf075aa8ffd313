"""Rollout speed of the two engines on the tiny model, one process: HF `generate` on the policy
(`rollout.engine: hf`) against a colocated vLLM engine (`rollout.engine: vllm`), plus the vLLM
engine's start-up and weight-sync times.

    python benchmarks/vllm_rollout.py [--model outputs/bench-pipeline/sft/model] [--rounds 5]

Needs the vllm extra (docs/vllm.md). Each round rolls out what one RL step of recipes/tiny/rl.yaml
rolls out: 8 RL prompts x G=8 at the recipe's sampling settings and token budget, force answering
included. The first round of each engine is a warm-up and is not counted.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", default="outputs/bench-pipeline/sft/model")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()

    import torch
    import transformers
    import vllm
    from report import machine, write_section

    from rlcs.chat import example_prompt
    from rlcs.config import ModelConfig, RLRecipe, load_recipe
    from rlcs.data import load_examples
    from rlcs.engine import HFEngine, SamplingParams
    from rlcs.runtime import load_model, load_tokenizer
    from rlcs.vllm_engine import VLLMEngine

    recipe = load_recipe(REPO / "recipes/tiny/rl.yaml", RLRecipe, [f"model.path={args.model}"])
    config = ModelConfig(path=args.model)
    tokenizer, model = load_tokenizer(config), load_model(config)
    examples = load_examples(REPO / recipe.data.train)
    batch, G = recipe.rl.batch_size, recipe.rollout.group_size
    params = SamplingParams.from_rollout(recipe.rollout)
    rounds = [[example_prompt(tokenizer, e) for e in examples[r * batch:(r + 1) * batch]]
              for r in range(args.rounds + 1)]

    started = time.time()
    vllm_engine = VLLMEngine(model, tokenizer, None, config, recipe.rollout.vllm, seed=0)
    startup = time.time() - started
    syncs = []
    for _ in range(5):
        started = time.time()
        vllm_engine.sync_weights()
        syncs.append(time.time() - started)

    rows = []
    for name, engine in (("hf", HFEngine(model, tokenizer, max_rows=recipe.rollout.max_rows_per_generate)),
                         ("vllm", vllm_engine), ("vllm, request_seeds: false", vllm_engine)):
        if name.endswith("false"):
            vllm_engine.settings = vllm_engine.settings.model_copy(update={"request_seeds": False})
        torch.manual_seed(0)
        seconds, tokens, forced = [], 0, 0
        for index, prompts in enumerate(rounds):
            started = time.time()
            completions = engine.generate(prompts, G, params)
            if index:  # the first round warms up
                seconds.append(time.time() - started)
                tokens += sum(len(c.token_ids) for c in completions)
                forced += sum(c.forced for c in completions)
        rows.append((name, statistics.mean(seconds), tokens / sum(seconds), forced / (len(seconds) * batch * G)))
        print(name, rows[-1])

    hf_seconds = rows[0][1]
    lines = [
        "## Rollout engines: HF `generate` against colocated vLLM (tiny model, one process)",
        "",
        f"Command: `python benchmarks/vllm_rollout.py --model {args.model} --rounds {args.rounds}` "
        f"(vllm {vllm.__version__}, transformers {transformers.__version__}). Machine: {machine()}.",
        f"Each round: {batch} RL prompts x G={G}, up to {params.max_new_tokens} new tokens at temperature "
        f"{params.temperature}, force answering on; {args.rounds} rounds after one warm-up round.",
        "",
        "| engine | seconds per round | generated tokens/s | forced answers | vs hf |",
        "|---|---|---|---|---|",
    ]
    for name, seconds, rate, forced_share in rows:
        lines.append(f"| {name} | {seconds:.2f} | {rate:,.0f} | {forced_share:.0%} | {hf_seconds / seconds:.2f}x |")
    lines += ["", "`request_seeds: true` (the default) gives every request its own seed, so samples are reproducible "
              "whatever else draws random numbers; vLLM then samples each request with its own generator.",
              "", f"vLLM engine start-up: {startup:.1f} s; weight sync (`sync_weights`, every parameter streamed "
              f"in and the tied head repacked): {statistics.mean(syncs) * 1000:.0f} ms on average over "
              f"{len(syncs)} syncs."]
    write_section("vllm_rollout", "\n".join(lines))


if __name__ == "__main__":  # vLLM's engine core may start processes with spawn
    main()
