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

from .conftest import REPO, zero3_launcher

pytestmark = pytest.mark.slow


def test_zero3_sft_partitions_parameters_and_decreases_loss(tmp_path, micro_model_dir, suite_dir):
    out = tmp_path / "sft"
    command = [
        *zero3_launcher(29531),
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
        *zero3_launcher(29535),
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
    command = [*zero3_launcher(29537), str(REPO / "tests/probes/zero3_probe.py"), str(micro_model_dir), str(out)]
    result = subprocess.run(command, cwd=REPO, env={**os.environ, "OMP_NUM_THREADS": "1"}, capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-5000:]
    ranks = json.loads(out.read_text())
    assert [r["rank"] for r in ranks] == [0, 1]
    assert all(r["greedy_matches"] for r in ranks)
    assert ranks[0]["forced"] >= 1 and ranks[1]["forced"] == 0  # process 1 joined every call with nothing to do
    for r in ranks:
        assert r["loss_after_generation"] == pytest.approx(r["expected_loss"], rel=1e-5)
    assert [r["guard_skipped"] for r in ranks] == [1, 1]  # the decision is collective
    assert all(r["finite"] and r["changed"] and r["deepspeed_skipped_steps"] == 0 for r in ranks)


def _on_two_machines(args: list[str], port: int) -> list[str]:
    """``rlcs ARGS`` as a two-machine launch (one CPU process per machine rank, rendezvous at
    127.0.0.1), the way each node of a cluster starts it; returns both logs."""
    processes = [subprocess.Popen(
        [sys.executable, "-m", "accelerate.commands.launch", "--config_file",
         str(REPO / "recipes/accelerate/cpu_zero3_2machines.yaml"), "--machine_rank", str(rank),
         "--main_process_port", str(port), "-m", "rlcs.cli", *args],
        cwd=REPO, env={**os.environ, "OMP_NUM_THREADS": "1"}, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        text=True) for rank in (0, 1)]
    logs = []
    try:
        for process in processes:
            logs.append(process.communicate(timeout=300)[0])
    finally:
        for process in processes:
            process.kill()
    assert [p.returncode for p in processes] == [0, 0], "\n".join(log[-3000:] for log in logs)
    return logs


def test_two_machines_run_sft_and_rl_steps_checkpoint_and_resume(tmp_path, micro_model_dir, suite_dir, choice_task):
    """recipes/accelerate/cpu_zero3_2machines.yaml: num_machines 2, machine ranks 0 and 1, one process each."""
    sft = ["sft", "--config", str(REPO / "recipes/tiny/sft.yaml"), f"output_dir={tmp_path / 'sft'}",
           f"model.path={micro_model_dir}", f"data.train={suite_dir / 'sft.jsonl'}", "data.eval=null",
           "train.micro_batch_size=2", "train.save_every=2", "train.log_every=1", "logging.wandb=false"]
    _on_two_machines([*sft, "train.max_steps=4"], 29551)
    info = json.loads((tmp_path / "sft/run_info.json").read_text())
    assert info["num_processes"] == 2 and all(0.4 < n / info["parameters"] < 0.6 for n in info["parameters_per_rank"])
    logs = _on_two_machines([*sft, "train.max_steps=6"], 29552)  # continues from the step-2 checkpoint
    assert any("resumed from" in log and "step-2" in log for log in logs)
    assert [r["step"] for r in read_metrics(tmp_path / "sft") if "train/loss" in r] == [1, 2, 3, 4, 5, 6]

    rl = ["rl", "--config", str(REPO / "recipes/tiny/rl.yaml"), f"output_dir={tmp_path / 'rl'}",
          f"model.path={choice_task / 'sft/model'}", f"data.train={choice_task / 'rl.jsonl'}", "data.eval=null",
          "train.micro_batch_size=8", "train.save_every=1", "rollout.max_new_tokens=48", "rollout.answer_budget=8",
          # level strata: their first-look sums are in the state both ranks must agree on and resume from
          "sampler.name=rlcs", "sampler.rlcs.prior_by=[level]", "logging.wandb=false"]
    _on_two_machines([*rl, "train.steps=2"], 29553)
    _on_two_machines([*rl, "train.steps=3"], 29554)  # resumes from step 1, the newest checkpoint
    picks = [json.loads(line) for line in (tmp_path / "rl/picks.jsonl").read_text().splitlines()]
    assert [p["step"] for p in picks] == [1, 2, 3]
    info = json.loads((tmp_path / "rl/run_info.json").read_text())
    assert info["num_processes"] == 2 and len(set(info["sampler_digest_per_rank"])) == 1
