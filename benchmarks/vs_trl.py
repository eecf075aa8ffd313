"""The correctness anchor: rlcs (uniform sampler) against TRL's GRPOTrainer on the same budget.

    pip install -e ".[bench]"   # trl
    python benchmarks/vs_trl.py [--model outputs/tiny/sft/model] [--steps 40] [--seeds 3]

Both start from the same SFT model and get exactly the same prompts (a seeded
shuffle of `data/tiny/rl.jsonl`, all domains, one pass), 8 prompts x G=8
completions per optimizer step (TRL: 16 per device x 4 accumulation),
sampling at temperature 1.0, top-p 1.0, at most 160 new tokens, stop at EOS or
</answer>, no KL (TRL beta=0), clip 0.2 / 0.28, the per-sample loss (TRL
loss_type="grpo": token mean within a completion, then mean), group std
scaling, one optimizer step per rollout batch, the same learning rate and the
same verifiers, one CPU process each, run one after the other. rlcs runs with
uniform sampling and force answering off, since TRL has neither.

Held-out gain: greedy accuracy scored by the verifiers on the same held-out
subset (200 items of data/tiny/eval.jsonl), measured with the same function
(rlcs.evaluate) on the start model and on each final model. Seconds per step:
steps 2..N of each run (the first is warm-up).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from report import machine, mean_sd, write_section  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
G, PROMPTS_PER_STEP, MAX_NEW = 8, 8, 160
ENV = {**os.environ, "WANDB_MODE": "disabled"}


def run_trl(model: str, data: str, steps: int, lr: float, seed: int, out: str) -> None:
    import datasets
    from transformers import AutoModelForCausalLM, AutoTokenizer, TrainerCallback
    from trl import GRPOConfig, GRPOTrainer

    from rlcs.data import load_examples
    from rlcs.evaluate import recipe_router

    examples = load_examples(data)
    _, router = recipe_router(REPO / "recipes/tiny/rl.yaml", model, examples, data=data, workers=0)
    rows = [{"prompt": [{"role": "user", "content": e["prompt"]}], "answer": e["answer"], "domain": e["domain"]}
            for e in examples]

    def reward(completions, answer, domain, **_):
        texts = [c if isinstance(c, str) else c[-1]["content"] for c in completions]
        return router.score(texts, [{"answer": a, "domain": d} for a, d in zip(answer, domain)])

    tokenizer = AutoTokenizer.from_pretrained(model)
    stops = [tokenizer.eos_token_id, tokenizer.convert_tokens_to_ids("</answer>")]
    args = GRPOConfig(
        output_dir=out, max_steps=steps, per_device_train_batch_size=16, gradient_accumulation_steps=4,
        num_generations=G, max_completion_length=MAX_NEW, temperature=1.0, top_p=1.0, beta=0.0, learning_rate=lr,
        lr_scheduler_type="constant", warmup_steps=0, logging_steps=1, report_to="none", use_cpu=True,
        save_strategy="no", generation_kwargs={"eos_token_id": stops}, epsilon=0.2, epsilon_high=0.28, seed=seed,
        loss_type="grpo", scale_rewards="group", shuffle_dataset=False, adam_beta2=0.95, max_grad_norm=1.0,
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
    trainer.save_model(str(Path(out) / "model"))
    rewards = [row["reward"] for row in trainer.state.log_history if "reward" in row]
    (Path(out) / "trl_times.json").write_text(json.dumps({"start": started, "step_ends": times, "rewards": rewards}))


def run_rlcs(model: str, data: str, steps: int, lr: float, seed: int, out: str) -> None:
    subprocess.run([
        sys.executable, "-m", "rlcs.cli", "rl", "--config", "recipes/tiny/rl.yaml", f"output_dir={out}",
        f"model.path={model}", f"data.train={data}", "data.eval=null", f"train.steps={steps}", f"seed={seed}",
        f"rollout.group_size={G}", f"rl.batch_size={PROMPTS_PER_STEP}", f"rollout.max_new_tokens={MAX_NEW}",
        "rollout.force_answer=false", "rollout.temperature=1.0", "rollout.top_p=1.0", "rl.aggregation=per_sample",
        "rl.eps_low=0.2", "rl.eps_high=0.28", "rl.kl_coef=0", "rl.ppo_epochs=1", "rl.mini_batches=1",
        "train.micro_batch_size=16", f"optim.lr={lr}", "optim.schedule=constant", "optim.warmup_steps=0",
        "logging.wandb=false", "train.resume=never",
        "sampler.name=uniform", "train.max_rollouts=null",  # TRL samples uniformly: same rollouts per step
    ], cwd=REPO, env=ENV, check=True)


def held_out(model: str, examples: list[dict]) -> float:
    from rlcs.config import ModelConfig
    from rlcs.evaluate import evaluate, recipe_router
    from rlcs.runtime import load_model, load_tokenizer

    recipe, router = recipe_router(REPO / "recipes/tiny/rl.yaml", model, examples, workers=0)
    config = ModelConfig(path=model)
    metrics, _ = evaluate(load_model(config), load_tokenizer(config), examples, recipe.train.eval_max_new_tokens,
                          show_progress=False, scorer=router.score)
    return metrics["eval/accuracy"]


def per_step(ends: list[float], start: float) -> list[float]:
    stamps = [start, *ends]
    return [b - a for a, b in zip(stamps, stamps[1:])]


def spread(values: list[float], percent: bool = True) -> str:
    return mean_sd(values, (lambda v: f"{v * 100:+.1f}") if percent else (lambda v: f"{v:.2f}"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", default="outputs/tiny/sft/model")
    parser.add_argument("--data", default="data/tiny/rl.jsonl")
    parser.add_argument("--eval-data", default="data/tiny/eval.jsonl")
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--lr", type=float, default=None, help="default: the tiny RL recipe's optim.lr")
    parser.add_argument("--out", default="outputs/bench-vs-trl")
    parser.add_argument("--only-trl", type=int, default=None, help=argparse.SUPPRESS)  # a seed, in a subprocess
    args = parser.parse_args()
    out = REPO / args.out
    if args.lr is None:
        import yaml

        args.lr = float(yaml.safe_load((REPO / "recipes/tiny/rl.yaml").read_text())["optim"]["lr"])
    if args.only_trl is not None:
        run_trl(args.model, args.data, args.steps, args.lr, args.only_trl, str(out / f"trl-seed{args.only_trl}"))
        return

    from rlcs.data import load_examples, write_jsonl

    # Both frameworks get exactly these prompts: a seeded shuffle across all domains, one pass.
    examples = load_examples(args.data)
    random.Random(0).shuffle(examples)
    prompts = out / "prompts.jsonl"
    write_jsonl(examples[: args.steps * PROMPTS_PER_STEP], prompts)
    eval_examples = load_examples(args.eval_data)
    eval_examples = random.Random(0).sample(eval_examples, min(200, len(eval_examples)))
    start = held_out(args.model, eval_examples)

    results: dict[str, dict[str, list[float]]] = {"TRL GRPOTrainer": {}, "rlcs (uniform)": {}}
    for seed in range(args.seeds):
        trl_dir, rlcs_dir = out / f"trl-seed{seed}", out / f"rlcs-seed{seed}"
        subprocess.run([sys.executable, __file__, "--only-trl", str(seed), "--model", args.model, "--data",
                        str(prompts), "--steps", str(args.steps), "--out", args.out, "--lr", str(args.lr)],
                       cwd=REPO, env=ENV, check=True)
        trl = json.loads((trl_dir / "trl_times.json").read_text())
        run_rlcs(args.model, str(prompts), args.steps, args.lr, seed, str(rlcs_dir))
        rows = [json.loads(line) for line in (rlcs_dir / "metrics.jsonl").read_text().splitlines()]
        rows = [r for r in rows if "reward/mean" in r]
        measured = {
            "TRL GRPOTrainer": (per_step(trl["step_ends"], trl["start"])[1:], trl["rewards"], trl_dir / "model"),
            "rlcs (uniform)": ([b["time/elapsed_s"] - a["time/elapsed_s"] for a, b in zip(rows, rows[1:])],
                               [r["reward/mean"] for r in rows], rlcs_dir / "model"),
        }
        for name, (seconds, rewards, model_dir) in measured.items():
            entry = results[name]
            entry.setdefault("step_s", []).append(statistics.mean(seconds))
            entry.setdefault("reward_first", []).append(statistics.mean(rewards[:5]))
            entry.setdefault("reward_last", []).append(statistics.mean(rewards[-5:]))
            entry.setdefault("gain", []).append(held_out(str(model_dir), eval_examples) - start)

    lines = [f"| {name} | {spread(r['gain'])} | {spread(r['reward_first'], False)} → "
             f"{spread(r['reward_last'], False)} | {spread(r['step_s'], False)} |" for name, r in results.items()]
    ratio = statistics.mean(results["rlcs (uniform)"]["step_s"]) / statistics.mean(results["TRL GRPOTrainer"]["step_s"])
    write_section("vs_trl", f"""
## Correctness anchor: rlcs (uniform sampler) versus TRL GRPOTrainer, same budget

Command: `python benchmarks/vs_trl.py --model {args.model} --steps {args.steps} --seeds {args.seeds}` (TRL
1.16; the same SFT model and the same {args.steps * PROMPTS_PER_STEP} prompts for both; 8 prompts x G=8 per
step, temperature 1.0, top-p 1.0, at most {MAX_NEW} new tokens, beta=0, clip 0.2/0.28, per-sample loss, lr
{args.lr:g}, one optimizer step per rollout batch; rlcs with uniform sampling and force answering off).
Held-out: greedy, verifier-scored, 200 items of `{args.eval_data}`; the start model scores {start:.1%}.
Mean ± standard deviation over seeds 0..{args.seeds - 1}. Machine: {machine()}.

| framework | held-out gain (points) | training reward, first 5 → last 5 steps | seconds per step |
|---|---|---|---|
{chr(10).join(lines)}

rlcs / TRL time per step: **{ratio:.2f}** (below 1: rlcs is faster).
""")


if __name__ == "__main__":
    main()
