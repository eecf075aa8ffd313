"""Multi-process behaviour: SFT under `accelerate launch` with 2 CPU processes and DeepSpeed ZeRO-3."""

import json
import math
import os
import subprocess
import sys

import pytest
import torch
from transformers import AutoModelForCausalLM

from rlcs.metrics import read_metrics

from .conftest import REPO

pytestmark = pytest.mark.slow


def test_zero3_sft_partitions_parameters_and_decreases_loss(tmp_path, micro_model_dir, suite_dir):
    out = tmp_path / "sft"
    command = [
        sys.executable, "-m", "accelerate.commands.launch",
        "--config_file", str(REPO / "recipes/accelerate/cpu_zero3.yaml"), "--main_process_port", "29531",
        "-m", "rlcs.cli", "sft", "--config", str(REPO / "recipes/tiny/sft.yaml"),
        f"output_dir={out}", f"model.path={micro_model_dir}",
        f"data.train={suite_dir / 'sft.jsonl'}", f"data.eval={suite_dir / 'sft_eval.jsonl'}",
        "data.seq_len=256", "train.micro_batch_size=2", "train.grad_accum=2", "train.max_steps=8", "train.log_every=1",
        "train.eval_every=8", "optim.lr=1e-2", "optim.warmup_steps=0", "optim.schedule=constant",
        "logging.wandb=false",
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-5000:]

    info = json.loads((out / "run_info.json").read_text())
    assert info["num_processes"] == 2 and "DEEPSPEED" in info["distributed_type"]
    shares = [held / info["parameters"] for held in info["parameters_per_rank"]]
    assert all(0.4 < share < 0.6 for share in shares), shares  # each rank holds about half

    losses = [row["train/loss"] for row in read_metrics(out) if "train/loss" in row]
    assert len(losses) == 8 and all(math.isfinite(loss) for loss in losses)
    assert sum(losses[-2:]) / 2 < 0.8 * sum(losses[:2]) / 2, losses
    assert any("eval/loss" in row for row in read_metrics(out))

    # The final model is gathered from the shards into a normal HF directory.
    reloaded = AutoModelForCausalLM.from_pretrained(out / "model")
    initial = AutoModelForCausalLM.from_pretrained(micro_model_dir)
    assert sum(p.numel() for p in reloaded.parameters()) == info["parameters"]
    changed = [not torch.equal(a, b) for a, b in zip(reloaded.parameters(), initial.parameters())]
    assert all(changed)


def test_zero3_checkpoint_holds_deepspeed_shards_and_resumes(tmp_path, micro_model_dir, suite_dir):
    out = tmp_path / "sft"
    common = [
        sys.executable, "-m", "accelerate.commands.launch",
        "--config_file", str(REPO / "recipes/accelerate/cpu_zero3.yaml"), "--main_process_port", "29535",
        "-m", "rlcs.cli", "sft", "--config", str(REPO / "recipes/tiny/sft.yaml"), f"output_dir={out}",
        f"model.path={micro_model_dir}", f"data.train={suite_dir / 'sft.jsonl'}", "data.eval=null",
        "data.seq_len=256", "train.micro_batch_size=2", "train.save_every=2", "train.log_every=1",
        "logging.wandb=false",
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    for steps in (3, 5):  # 3 steps write step-2; the second run resumes from it and goes on to 5
        result = subprocess.run([*common, f"train.max_steps={steps}"], cwd=REPO, env=env, capture_output=True,
                                text=True, timeout=600)
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-5000:]
    state = out / "checkpoints/step-2/state"
    shards = sorted(p.name for p in state.rglob("*optim_states.pt"))
    assert len(shards) == 2, shards  # DeepSpeed's ZeRO optimizer state, one shard per process
    assert (state / "random_states_0.pkl").exists() and (state / "random_states_1.pkl").exists()
    steps = [row["step"] for row in read_metrics(out) if "train/loss" in row]
    assert steps == [1, 2, 3, 4, 5]  # step 3 was redone after resuming from step 2, and logged once
    events = [json.loads(line)["event"] for line in (out / "checkpoints/timings.jsonl").read_text().splitlines()]
    assert events.count("resume") == 1


def test_zero3_generation_hooks_and_nonfinite_guard(tmp_path, micro_model_dir):
    """tests/probes/zero3_probe.py under 2 ZeRO-3 processes with uneven work (see its docstring)."""
    out = tmp_path / "probe.json"
    command = [sys.executable, "-m", "accelerate.commands.launch", "--config_file",
               str(REPO / "recipes/accelerate/cpu_zero3.yaml"), "--main_process_port", "29535",
               str(REPO / "tests/probes/zero3_probe.py"), str(micro_model_dir), str(out)]
    result = subprocess.run(command, cwd=REPO, env={**os.environ, "OMP_NUM_THREADS": "1"}, capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-5000:]
    ranks = json.loads(out.read_text())
    assert [r["rank"] for r in ranks] == [0, 1]
    assert all(r["greedy_matches"] for r in ranks)
    assert ranks[0]["forced"] == 3 and ranks[1]["forced"] == 0  # process 1 joined every call with nothing to do
    for r in ranks:
        assert r["loss_after_generation"] == pytest.approx(r["expected_loss"], rel=1e-5)
    assert [r["guard_skipped"] for r in ranks] == [1, 1]  # the decision is collective
    assert all(r["finite"] and r["changed"] and r["deepspeed_skipped_steps"] == 0 for r in ranks)
