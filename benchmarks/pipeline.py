"""Wall time of ./launch.sh on the tiny recipe per step, and held-out accuracy after SFT.

    python benchmarks/pipeline.py [--out outputs/bench-pipeline] [--skip-launch]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from report import machine, write_section  # noqa: E402

from rlcs.config import ModelConfig  # noqa: E402
from rlcs.data import load_examples  # noqa: E402
from rlcs.evaluate import evaluate, format_table  # noqa: E402
from rlcs.metrics import read_metrics  # noqa: E402
from rlcs.runtime import load_model, load_tokenizer  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", default="outputs/bench-pipeline")
    parser.add_argument("--skip-launch", action="store_true", help="reuse an existing run in --out")
    args = parser.parse_args()
    out = REPO / args.out

    total = None
    if not args.skip_launch:
        started = time.time()
        subprocess.run(["./launch.sh", "--out", args.out], cwd=REPO, check=True)
        total = time.time() - started
    timings = [line.split("\t") for line in (out / "launch_times.tsv").read_text().splitlines()]

    config = ModelConfig(path=str(out / "sft" / "model"))
    examples = load_examples(str(REPO / "data/tiny/eval.jsonl"))
    started = time.time()
    metrics, _ = evaluate(load_model(config), load_tokenizer(config), examples)
    eval_seconds = time.time() - started

    rl_section = _rl_before_after(out / "rl") if (out / "rl" / "metrics.jsonl").exists() else ""
    rows = "\n".join(f"| {stage} | {seconds} |" for stage, seconds in timings)
    total_line = f"| **total (launch.sh wall time)** | {total:.0f} |" if total is not None else ""
    write_section("pipeline", f"""
## Tiny pipeline: `./launch.sh` wall time per step

Command: `python benchmarks/pipeline.py` (runs `./launch.sh --out {args.out}` with the default
`recipes/tiny/` and `recipes/accelerate/cpu.yaml`, then greedy evaluation). Machine: {machine()}.

| step | seconds |
|---|---|
{rows}
{total_line}

## Held-out exact-answer accuracy after SFT (tiny model, greedy)

{len(examples)} held-out examples of `data/tiny/eval.jsonl` (ids excluded from every training split),
boxed answer compared exactly after whitespace normalisation; evaluation took {eval_seconds:.0f} s.

{format_table(metrics)}
{rl_section}
""")


def _rl_before_after(rl_dir: Path) -> str:
    """Held-out greedy accuracy logged by the RL stage before its first step and after its last."""
    rows = [r for r in read_metrics(rl_dir) if "eval/accuracy" in r]
    before, after = rows[0], rows[-1]
    domains = sorted({k.split("/")[1] for k in before if k.count("/") == 2 and k != "eval/accuracy"})
    lines = [f"| {d} | {before[f'eval/{d}/accuracy']:.0%} | {after[f'eval/{d}/accuracy']:.0%} |" for d in domains]
    lines.append(f"| **all** | {before['eval/accuracy']:.0%} | {after['eval/accuracy']:.0%} |")
    rewards = [r["reward/mean"] for r in read_metrics(rl_dir) if "reward/mean" in r]
    k = max(1, len(rewards) // 5)
    return f"""
## Held-out accuracy before and after RL (tiny recipe)

The RL stage's own evaluation (`eval_max_examples` held-out items drawn with the recipe's seed, greedy) at
step 0 and after step {after['step']}. Mean training reward: first {k} steps {sum(rewards[:k]) / k:.3f},
last {k} steps {sum(rewards[-k:]) / k:.3f}.

| domain | before RL | after RL |
|---|---|---|
""" + "\n".join(lines)


if __name__ == "__main__":
    main()
