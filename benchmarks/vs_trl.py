"""Seconds per RL step: rlcs versus TRL's GRPOTrainer, same model, prompts, G, batch and length.

    pip install -e ".[bench]"   # trl
    python benchmarks/vs_trl.py [--model outputs/tiny/sft/model] [--steps 12]

Both: 8 prompts x G=8 completions per optimizer step (TRL: 16 per device x 4
accumulation), sampling at temperature 1.0, top-p 1.0, at most 160 new tokens,
stop at EOS or </answer>, no KL (TRL beta=0), one optimizer step per rollout
batch, the same verifiers, lr 3e-4, one CPU process each, run one after the
other. rlcs runs with uniform sampling and force answering off, since TRL has
neither (curriculum expansion would roll out more per step). The first step
of each is excluded as warm-up.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from report import machine, write_section  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
G, PROMPTS_PER_STEP, MAX_NEW, LR = 8, 8, 160, 3e-4
ENV = {**os.environ, "WANDB_MODE": "disabled"}


def run_trl(model: str, data: str, steps: int, out: str) -> None:
    import datasets
    from transformers import AutoModelForCausalLM, AutoTokenizer, TrainerCallback
    from trl import GRPOConfig, GRPOTrainer

    from rewards.router import RewardRouter
    from rlcs.config import RLRecipe, load_recipe
    from rlcs.data import load_examples

    recipe = load_recipe(REPO / "recipes/tiny/rl.yaml", RLRecipe, [f"model.path={model}", f"data.train={data}"])
    examples = load_examples(data)
    router = RewardRouter.from_config({d: e.model_dump() for d, e in recipe.rewards.items()}, examples)
    rows = [{"prompt": [{"role": "user", "content": e["prompt"]}], "answer": e["answer"], "domain": e["domain"]}
            for e in examples]

    def reward(completions, answer, domain, **_):
        texts = [c if isinstance(c, str) else c[-1]["content"] for c in completions]
        return router.score(texts, [{"answer": a, "domain": d} for a, d in zip(answer, domain)])

    tokenizer = AutoTokenizer.from_pretrained(model)
    stops = [tokenizer.eos_token_id, tokenizer.convert_tokens_to_ids("</answer>")]
    args = GRPOConfig(
        output_dir=out, max_steps=steps, per_device_train_batch_size=16, gradient_accumulation_steps=4,
        num_generations=G, max_completion_length=MAX_NEW, temperature=1.0, top_p=1.0, beta=0.0, learning_rate=LR,
        lr_scheduler_type="constant", warmup_steps=0, logging_steps=1, report_to="none", use_cpu=True,
        save_strategy="no", generation_kwargs={"eos_token_id": stops}, epsilon=0.2, epsilon_high=0.28, seed=0,
    )
    times: list[float] = []

    class Timer(TrainerCallback):
        def on_step_end(self, *_args, **_kwargs):
            times.append(time.time())

    trainer = GRPOTrainer(model=AutoModelForCausalLM.from_pretrained(model), reward_funcs=reward, args=args,
                          train_dataset=datasets.Dataset.from_list(rows), processing_class=tokenizer,
                          callbacks=[Timer()])
    started = time.time()
    trainer.train()
    rewards = [row["reward"] for row in trainer.state.log_history if "reward" in row]
    Path(out).mkdir(parents=True, exist_ok=True)
    (Path(out) / "trl_times.json").write_text(json.dumps({"start": started, "step_ends": times, "rewards": rewards}))


def run_rlcs(model: str, data: str, steps: int, out: str) -> None:
    subprocess.run([
        sys.executable, "-m", "rlcs.cli", "rl", "--config", "recipes/tiny/rl.yaml", f"output_dir={out}",
        f"model.path={model}", f"data.train={data}", "data.eval=null", f"train.steps={steps}",
        f"rollout.group_size={G}", f"rl.batch_size={PROMPTS_PER_STEP}", f"rollout.max_new_tokens={MAX_NEW}",
        "rollout.force_answer=false", "train.micro_batch_size=16", f"optim.lr={LR}", "logging.wandb=false",
        "sampler.name=uniform", "train.max_rollouts=null",  # TRL samples uniformly: same rollouts per step
    ], cwd=REPO, env=ENV, check=True)


def per_step(ends: list[float], start: float) -> list[float]:
    stamps = [start, *ends]
    return [b - a for a, b in zip(stamps, stamps[1:])]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", default="outputs/tiny/sft/model")
    parser.add_argument("--data", default="data/tiny/rl.jsonl")
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--out", default="outputs/bench-vs-trl")
    parser.add_argument("--only-trl", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    out = REPO / args.out
    if args.only_trl:
        run_trl(args.model, args.data, args.steps, str(out / "trl"))
        return

    # Both frameworks get exactly these prompts: a seeded shuffle across all domains, one epoch's worth.
    import random

    from rlcs.data import load_examples, write_jsonl

    examples = load_examples(args.data)
    random.Random(0).shuffle(examples)
    prompts = out / "prompts.jsonl"
    write_jsonl(examples[: args.steps * PROMPTS_PER_STEP], prompts)
    args.data = str(prompts)
    subprocess.run([sys.executable, __file__, "--only-trl", "--model", args.model, "--data", args.data,
                    "--steps", str(args.steps), "--out", args.out], cwd=REPO, env=ENV, check=True)
    trl = json.loads((out / "trl" / "trl_times.json").read_text())
    trl_steps = per_step(trl["step_ends"], trl["start"])[1:]

    run_rlcs(args.model, args.data, args.steps, str(out / "rlcs"))
    rows = [json.loads(line) for line in (out / "rlcs" / "metrics.jsonl").read_text().splitlines()]
    rows = [r for r in rows if "reward/mean" in r]
    rlcs_steps = [b["time/elapsed_s"] - a["time/elapsed_s"] for a, b in zip(rows, rows[1:])]
    parts = {k: statistics.mean(r[k] for r in rows[1:]) for k in ("time/rollout_s", "time/reward_s", "time/train_s")}

    trl_mean, rlcs_mean = statistics.mean(trl_steps), statistics.mean(rlcs_steps)
    write_section("vs_trl", f"""
## RL step time: rlcs versus TRL GRPOTrainer

Command: `python benchmarks/vs_trl.py --model {args.model} --steps {args.steps}` (TRL 1.16, same tiny
model, the same {args.steps * PROMPTS_PER_STEP} prompts (a seeded shuffle of `data/tiny/rl.jsonl`, all
domains), 8 prompts x G=8, at most {MAX_NEW}
new tokens, beta=0, one optimizer step per rollout batch; rlcs with uniform sampling and force answering
off). Machine: {machine()}.
Steps 2..{args.steps} of each run; rewards are the per-step mean reward.

| framework | seconds per step (mean) | median | mean reward |
|---|---|---|---|
| TRL GRPOTrainer | {trl_mean:.2f} | {statistics.median(trl_steps):.2f} | {statistics.mean(trl['rewards']):.3f} |
| rlcs | {rlcs_mean:.2f} | {statistics.median(rlcs_steps):.2f} | {statistics.mean(r['reward/mean'] for r in rows):.3f} |

rlcs / TRL time ratio: **{rlcs_mean / trl_mean:.2f}** (below 1: rlcs is faster).
Where rlcs spends a step: rollout {parts['time/rollout_s']:.2f} s, reward {parts['time/reward_s']:.3f} s,
policy update {parts['time/train_s']:.2f} s.
""")


if __name__ == "__main__":
    main()
