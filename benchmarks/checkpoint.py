"""Checkpoint write time, resume time and size on disk, for each stage of the tiny recipe.

    python benchmarks/checkpoint.py [--models outputs/bench-pipeline]

Each stage runs 2 steps writing a full checkpoint after step 1 (rlcs records
every save and resume in checkpoints/timings.jsonl), then is run again to 3
steps, which resumes from that checkpoint.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from report import machine, write_section  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
STAGES = {  # stage -> (model to start from, overrides for 2 steps then 3)
    "pretrain": ("init/model", ["train.max_steps={n}"]),
    "sft": ("pretrain/model", ["train.max_steps={n}"]),
    "rl": ("sft/model", ["train.steps={n}", "train.max_rollouts=null", "data.eval=null"]),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--models", default="outputs/bench-pipeline", help="a launch.sh output folder")
    parser.add_argument("--out", default="outputs/bench-checkpoint")
    args = parser.parse_args()
    rows = []
    for stage, (start, overrides) in STAGES.items():
        out = REPO / args.out / stage
        shutil.rmtree(out, ignore_errors=True)
        for steps in (2, 3):
            subprocess.run([
                sys.executable, "-m", "rlcs.cli", stage, "--config", f"recipes/tiny/{stage}.yaml", f"output_dir={out}",
                f"model.path={REPO / args.models / start}", "train.save_every=1", "logging.wandb=false",
                *[o.format(n=steps) for o in overrides],
            ], cwd=REPO, env={**os.environ, "WANDB_MODE": "disabled"}, check=True)
        events = [json.loads(line) for line in (out / "checkpoints/timings.jsonl").read_text().splitlines()]
        save = next(e for e in events if e["event"] == "save")
        resume = next(e for e in events if e["event"] == "resume")
        rows.append(f"| {stage} | {save['seconds']:.2f} | {resume['seconds']:.2f} | {save['bytes'] / 2**20:.1f} |")
    write_section("checkpoint", f"""
## Checkpoints: write time, resume time, size (tiny recipe)

Command: `python benchmarks/checkpoint.py --models {args.models}` (one CPU process; a full checkpoint:
accelerate state with model, optimizer, LR schedule, RNG states, sampler and counters, plus the gathered
HF model; times as recorded by rlcs in `checkpoints/timings.jsonl`). Machine: {machine()}.

| stage | write (s) | resume: load state (s) | size on disk (MiB) |
|---|---|---|---|
{chr(10).join(rows)}
""")


if __name__ == "__main__":
    main()
