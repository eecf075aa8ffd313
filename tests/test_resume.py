"""Exact resume after kill -9, partial checkpoints, non-finite losses, SIGTERM, and the offline report."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from rlcs.metrics import read_metrics
from rlcs.resume import find_checkpoint

from .conftest import ENV, REPO
from .conftest import run_rlcs as run

RL = ["rl", "--config", "recipes/tiny/rl.yaml", "rollout.max_new_tokens=48", "rollout.answer_budget=12",
      "rollout.temperature=0.8", "optim.lr=1e-3", "logging.wandb=false", "data.eval=null", "train.steps=6",
      "train.save_every=2", "train.keep_checkpoints=3", "train.max_rollouts=null"]


def _steps(path):
    return [json.loads(line)["step"] for line in path.read_text().splitlines()]


@pytest.mark.slow
def test_kill_9_mid_rl_then_resume_matches_an_uninterrupted_run(tmp_path, choice_task):
    common = [f"model.path={choice_task / 'sft/model'}", f"data.train={choice_task / 'rl.jsonl'}"]
    straight, broken = tmp_path / "straight", tmp_path / "broken"
    run([*RL, f"output_dir={straight}", *common])

    process = subprocess.Popen([sys.executable, "-m", "rlcs.cli", *RL, f"output_dir={broken}", *common], cwd=REPO,
                               env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 300
    while not (broken / "checkpoints/step-4").exists():
        assert process.poll() is None and time.monotonic() < deadline, "the run ended before its step-4 checkpoint"
        time.sleep(0.2)
    os.killpg(process.pid, signal.SIGKILL)  # the whole process group: trainer and its reward workers
    process.wait()
    assert not (broken / "model").exists()  # it really died before finishing

    run([*RL, f"output_dir={broken}", *common])  # resume: auto

    picks = [json.loads(line)["ids"] for line in (straight / "picks.jsonl").read_text().splitlines()]
    assert [json.loads(line)["ids"] for line in (broken / "picks.jsonl").read_text().splitlines()] == picks
    digest = json.loads((straight / "run_info.json").read_text())["sampler_digest_per_rank"]
    assert json.loads((broken / "run_info.json").read_text())["sampler_digest_per_rank"] == digest
    straight_rewards = [r["reward/mean"] for r in read_metrics(straight) if "reward/mean" in r]
    assert [r["reward/mean"] for r in read_metrics(broken) if "reward/mean" in r] == straight_rewards
    steps = [r["step"] for r in read_metrics(broken) if "reward/mean" in r]
    assert steps == [1, 2, 3, 4, 5, 6]  # no step logged twice
    assert _steps(broken / "picks.jsonl") == [1, 2, 3, 4, 5, 6]
    # the hardest/easiest table (every completions_every=5 steps) matches too
    assert _steps(broken / "curriculum_items.jsonl") == [5]
    assert (broken / "curriculum_items.jsonl").read_text() == (straight / "curriculum_items.jsonl").read_text()


def test_partial_and_incomplete_checkpoints_are_ignored(tmp_path):
    root = tmp_path / "checkpoints"
    for name, complete in (("step-2", True), ("step-4", True), ("step-6.partial", True), ("step-8", False)):
        (root / name / "state").mkdir(parents=True)
        if complete:
            (root / name / "trainer_state.json").write_text("{}")
    assert find_checkpoint(tmp_path, "auto") == root / "step-4"
    assert find_checkpoint(tmp_path, "never") is None
    assert find_checkpoint(tmp_path, str(root / "step-2")) == root / "step-2"
    with pytest.raises(FileNotFoundError, match="not a complete rlcs checkpoint"):
        find_checkpoint(tmp_path, str(root / "step-8"))
    assert find_checkpoint(tmp_path / "elsewhere", "auto") is None


@pytest.mark.slow
def test_sigterm_writes_a_checkpoint_and_the_run_resumes(tmp_path, micro_model_dir, suite_dir):
    out = tmp_path / "sft"
    args = ["sft", "--config", "recipes/tiny/sft.yaml", f"output_dir={out}", f"model.path={micro_model_dir}",
            f"data.train={suite_dir / 'sft.jsonl'}", "data.eval=null", "data.seq_len=256", "train.micro_batch_size=2",
            "train.max_steps=400", "train.log_every=1", "logging.wandb=false"]
    process = subprocess.Popen([sys.executable, "-m", "rlcs.cli", *args], cwd=REPO, env=ENV,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    while not (out / "metrics.jsonl").exists() or len(read_metrics(out)) < 3:
        assert process.poll() is None and time.monotonic() < deadline
        time.sleep(0.1)
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=120) == 143
    [checkpoint] = list((out / "checkpoints").glob("step-*"))
    stopped_at = json.loads((checkpoint / "trainer_state.json").read_text())["step"]
    assert stopped_at >= 3 and not (out / "model").exists()

    run([*args, "train.max_steps=" + str(stopped_at + 3)])
    steps = [r["step"] for r in read_metrics(out) if "train/loss" in r]
    assert steps == list(range(1, stopped_at + 4))  # continued, nothing twice


def test_nonfinite_loss_skips_the_update_and_is_counted(tmp_path, micro_model_dir, suite_dir, monkeypatch):
    """In-process: the third forward returns a NaN loss. Steps 1-2 then a skipped step 3 must leave the
    weights exactly where a 2-step run leaves them; the skip is counted and training goes on."""
    import torch
    from transformers import AutoModelForCausalLM

    from rlcs.config import SFTRecipe, validate_recipe
    from rlcs.stages import sft

    def recipe(out, steps):
        return validate_recipe({"output_dir": str(out), "model": {"path": str(micro_model_dir)}, "seed": 0,
                                "data": {"train": str(suite_dir / "sft.jsonl"), "seq_len": 256},
                                "train": {"micro_batch_size": 2, "max_steps": steps, "log_every": 1},
                                "optim": {"schedule": "constant", "lr": 1e-2}, "logging": {"wandb": False}},
                               SFTRecipe)

    sft.run(recipe(tmp_path / "two", 2))
    calls = {"n": 0}
    original = torch.nn.Module.__call__

    def poisoned(self, *args, **kwargs):
        output = original(self, *args, **kwargs)
        if type(self).__name__.endswith("ForCausalLM") and getattr(output, "loss", None) is not None:
            calls["n"] += 1
            if calls["n"] == 3:
                output.loss = output.loss * float("nan")
        return output

    monkeypatch.setattr(torch.nn.Module, "__call__", poisoned)
    sft.run(recipe(tmp_path / "three", 3))
    monkeypatch.undo()

    rows = [r for r in read_metrics(tmp_path / "three") if "train/nonfinite_skipped" in r]
    assert [r["train/nonfinite_skipped"] for r in rows] == [0, 0, 1]
    assert "train/loss" not in rows[2]  # the only micro-batch of step 3 was skipped
    two = AutoModelForCausalLM.from_pretrained(tmp_path / "two/model").state_dict()
    three = AutoModelForCausalLM.from_pretrained(tmp_path / "three/model").state_dict()
    assert all(torch.equal(two[k], three[k]) for k in two)


def test_report_builds_pngs_and_html_from_recorded_metrics(tmp_path):
    rows = []
    for step in range(1, 6):
        rows.append({"step": step, "reward/mean": 0.1 * step, "reward/math/mean": 0.05 * step,
                     "rollout/length_mean": 40 + step, "train/loss": 1.0 / step, "curriculum/tier/easy": 0.1 * step,
                     "curriculum/domain/math/pass_rate": 0.1 * step, "curriculum/expansion_ratio": 1.5,
                     "curriculum/pass_rate_histogram": [step, 1, 0, 0, 0, 0, 0, 0, 2, 3]})
    rows.append({"step": 5, "eval/accuracy": 0.4, "eval/math/accuracy": 0.4, "eval/exact": 0.3, "eval/pass@1": 0.35})
    (tmp_path / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    completion = {"step": 5, "id": "m1", "domain": "math", "completion": "<think>x</think>", "answer": "4",
                  "reward": 1.0}
    (tmp_path / "completions.jsonl").write_text(json.dumps(completion) + "\n")
    result = run(["report", str(tmp_path)])
    assert "report:" in result.stdout
    report = tmp_path / "report"
    for stem in ("rewards", "lengths", "loss", "curriculum_tiers", "curriculum_domains", "curriculum_expansion",
                 "curriculum_histogram", "eval", "eval_overall"):
        assert (report / f"{stem}.png").stat().st_size > 1000, stem
    page = (report / "index.html").read_text()
    assert page.count("<img") == 9 and "&lt;think&gt;x&lt;/think&gt;" in page


def test_dashboard_builds_a_wandb_workspace_offline():
    """Construction only: saving needs a wandb login and network."""
    pytest.importorskip("wandb_workspaces", reason="optional extra: pip install -e '.[dashboard]'")
    from rlcs.dashboard import DASHBOARD, build_workspace

    workspace = build_workspace("my-team", "rlcs-tiny")
    assert [section.name for section in workspace.sections] == list(DASHBOARD)
    assert sum(len(section.panels) for section in workspace.sections) == sum(len(p) for p in DASHBOARD.values())
    assert workspace.auto_generate_panels  # tables and histograms come through wandb's automatic panels


@pytest.mark.slow
def test_resumed_sft_ends_with_exactly_the_weights_of_an_uninterrupted_run(tmp_path, micro_model_dir, suite_dir):
    import torch
    from transformers import AutoModelForCausalLM

    common = ["sft", "--config", "recipes/tiny/sft.yaml", f"model.path={micro_model_dir}",
              f"data.train={suite_dir / 'sft.jsonl'}", "data.eval=null", "data.seq_len=256", "train.micro_batch_size=2",
              "train.grad_accum=2", "train.save_every=2", "train.log_every=1", "optim.schedule=constant",
              "optim.warmup_steps=0", "logging.wandb=false"]
    run([*common, f"output_dir={tmp_path / 'straight'}", "train.max_steps=6"])
    run([*common, f"output_dir={tmp_path / 'resumed'}", "train.max_steps=3"])  # stops after step 3; checkpoint 2
    run([*common, f"output_dir={tmp_path / 'resumed'}", "train.max_steps=6"])  # resumes from step 2
    straight = AutoModelForCausalLM.from_pretrained(tmp_path / "straight/model").state_dict()
    resumed = AutoModelForCausalLM.from_pretrained(tmp_path / "resumed/model").state_dict()
    assert all(torch.equal(straight[k], resumed[k]) for k in straight)
    losses = {n: [(r["step"], r["train/loss"]) for r in read_metrics(tmp_path / n) if "train/loss" in r]
              for n in ("straight", "resumed")}
    assert [step for step, _ in losses["resumed"]] == [1, 2, 3, 4, 5, 6]  # step 3 redone, logged once
    assert losses["resumed"] == losses["straight"]  # the same batches in the same order, bit for bit


def test_a_resumed_run_rewinds_its_wandb_run_to_the_checkpoint(tmp_path, monkeypatch):
    """After a crash the wandb run holds steps past the checkpoint; the resumed run is rewound to the
    checkpoint's step (offline here: the branch point is recorded and logging continues right after it)."""
    pytest.importorskip("wandb")
    from types import SimpleNamespace

    from accelerate import Accelerator

    from rlcs.metrics import MetricsLogger

    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    recipe = SimpleNamespace(output_dir=str(tmp_path), logging=SimpleNamespace(wandb=True, project="rlcs-test",
                                                                                run_name=None),
                             model_dump=lambda mode: {})
    first = MetricsLogger(Accelerator(cpu=True, log_with="wandb"), recipe, "rl")
    for step in range(1, 6):
        first.log({"reward/mean": 0.1 * step}, step)
    first.close()  # the crash: steps 4 and 5 were logged after the checkpoint at step 3

    resumed = MetricsLogger(Accelerator(cpu=True, log_with="wandb"), recipe, "rl", resume_step=3, run_id=first.run_id)
    run = resumed.accelerator.get_tracker("wandb", unwrap=True)
    assert resumed.run_id == first.run_id
    assert run.starting_step == 4
    resumed.log({"reward/mean": 0.4}, 4)
    resumed.close()
    assert [r["step"] for r in read_metrics(tmp_path)] == [1, 2, 3, 4]
