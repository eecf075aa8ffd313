"""Single-process stage runs on the micro model, through the real `rlcs` command."""

import json
import math
import os
import subprocess
import sys

import pytest
import yaml
from transformers import AutoModelForCausalLM

from rlcs.metrics import read_metrics

from .conftest import REPO

pytestmark = pytest.mark.slow
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "WANDB_MODE": "disabled"}


def rlcs(*args, cwd=REPO):
    return subprocess.run([sys.executable, "-m", "rlcs.cli", *args], cwd=cwd, env=ENV, capture_output=True,
                          text=True, timeout=600)


def test_sft_run_logs_metrics_writes_recipe_and_rotates_checkpoints(tmp_path, micro_model_dir, suite_dir):
    out = tmp_path / "sft"
    result = rlcs("sft", "--config", "recipes/tiny/sft.yaml", f"output_dir={out}", f"model.path={micro_model_dir}",
                  f"data.train={suite_dir / 'sft.jsonl'}", f"data.eval={suite_dir / 'sft_eval.jsonl'}",
                  "data.seq_len=128", "train.micro_batch_size=4", "train.grad_accum=2", "train.max_steps=6",
                  "train.log_every=2", "train.eval_every=3", "train.save_every=2", "train.keep_checkpoints=2",
                  "logging.wandb=false")
    assert result.returncode == 0, result.stderr[-3000:]
    # conversations longer than seq_len are reported, not silently lost
    assert "longer than data.seq_len=128 tokens and were skipped" in result.stdout

    resolved = yaml.safe_load((out / "recipe.yaml").read_text())
    assert resolved["train"]["max_steps"] == 6 and resolved["optim"]["schedule"] == "cosine"

    rows = read_metrics(out)
    train_rows = [r for r in rows if "train/loss" in r]
    assert [r["step"] for r in train_rows] == [2, 4, 6]
    for key in ("train/lr", "train/grad_norm", "train/tokens_per_s", "train/padding_frac"):
        assert all(math.isfinite(r[key]) for r in train_rows), key
    assert [r["step"] for r in rows if "eval/loss" in r] == [3, 6]

    # save_every=2, keep 2, and the final step is the final model rather than a step checkpoint
    checkpoints = sorted(p.name for p in (out / "checkpoints").iterdir() if p.is_dir())
    assert checkpoints == ["step-2", "step-4"]
    assert not list(out.rglob("*.partial"))
    state = json.loads((out / "checkpoints/step-4/trainer_state.json").read_text())
    assert state["step"] == 4 and state["epoch"] == 0
    assert (out / "checkpoints/step-4/state").is_dir()  # optimizer, schedule and RNG states for resume
    AutoModelForCausalLM.from_pretrained(out / "checkpoints/step-4/model")
    AutoModelForCausalLM.from_pretrained(out / "model")


def test_bad_recipe_stops_before_compute_with_exit_code_2(tmp_path, micro_model_dir):
    result = rlcs("sft", "--config", "recipes/tiny/sft.yaml", f"output_dir={tmp_path}", "optim.learning_rate=1")
    assert result.returncode == 2
    assert "optim.learning_rate: unknown key" in result.stderr
    assert not (tmp_path / "metrics.jsonl").exists()


def test_launch_sh_chains_every_step(tmp_path):
    """The README's main job, shrunk: data -> init -> pretrain -> sft -> rl through accelerate launch."""
    data = tmp_path / "data"
    out = tmp_path / "run"
    sizes = ["data:eval_per_level=2", "data:rl_per_level=2", "data:sft_per_level=6", "data:pretrain_per_level=6",
             f"data:output_dir={data}", f"init:tokenizer.corpus=[{data}/pretrain.jsonl]",
             "init:model.config.hidden_size=32", "init:model.config.num_hidden_layers=1",
             "init:model.config.num_attention_heads=2", "init:model.config.num_key_value_heads=1",
             "init:model.config.head_dim=16",
             "init:model.config.intermediate_size=64",
             f"pretrain:data.train={data}/pretrain.jsonl", f"pretrain:data.eval={data}/pretrain_eval.jsonl",
             f"sft:data.train={data}/sft.jsonl", f"sft:data.eval={data}/sft_eval.jsonl",
             f"rl:data.train={data}/rl.jsonl", f"rl:data.eval={data}/eval.jsonl", "rl:train.steps=2",
             "rl:train.eval_max_examples=4", "rl:rollout.max_new_tokens=24", "rl:rollout.answer_budget=8",
             "pretrain:train.max_steps=2", "sft:train.max_steps=2", "pretrain:train.micro_batch_size=2",
             "sft:train.micro_batch_size=2", "logging.wandb=false"]
    result = subprocess.run(["./launch.sh", "--out", str(out), *sizes], cwd=REPO, env={**ENV, "PATH": _path()},
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    steps = [line.split("\t")[0] for line in (out / "launch_times.tsv").read_text().splitlines()]
    assert steps == ["data", "init", "pretrain", "sft", "rl"]
    for stage, previous in (("pretrain", "init"), ("sft", "pretrain"), ("rl", "sft")):
        recipe = yaml.safe_load((out / stage / "recipe.yaml").read_text())
        assert recipe["model"]["path"] == f"{out}/{previous}/model"  # each stage starts from the previous one
    assert f"{out}/rl/metrics.jsonl" in result.stdout
    AutoModelForCausalLM.from_pretrained(out / "rl/model")


def test_launch_sh_rejects_unknown_arguments():
    result = subprocess.run(["./launch.sh", "--bogus"], cwd=REPO, capture_output=True, text=True)
    assert result.returncode == 2 and "unknown argument '--bogus'" in result.stderr


@pytest.mark.parametrize("args, message", [
    (["--stages", "pretrian,sft"], "unknown stage 'pretrian' in --stages"),
    (["--stages", "sft", "sfy:train.max_steps=5"], "override 'sfy:train.max_steps=5' names no stage"),
    (["recipes/glm4-9b", "--stages", "init,sft"], "names 'init', but recipes/glm4-9b/init.yaml does not exist"),
])
def test_launch_sh_refuses_a_misspelt_stage_before_running_anything(tmp_path, args, message):
    result = subprocess.run(["./launch.sh", *args, "--out", str(tmp_path / "out")], cwd=REPO, capture_output=True,
                            text=True)
    assert result.returncode == 2 and message in result.stderr and "==>" not in result.stdout


def _path() -> str:
    """launch.sh calls `rlcs` and `accelerate`: make this interpreter's scripts visible."""
    return f"{os.path.dirname(sys.executable)}:{os.environ.get('PATH', '')}"


def test_attention_heads_that_do_not_share_kv_heads_evenly_are_refused_at_init(micro_tokenizer):
    from rlcs.stages.init import build_model

    with pytest.raises(ValueError, match=r"num_attention_heads \(2\) must be a multiple of num_key_value_heads \(4\)"):
        build_model("glm4", {"hidden_size": 32, "num_hidden_layers": 1, "num_attention_heads": 2,
                             "num_key_value_heads": 4, "head_dim": 16, "intermediate_size": 64}, micro_tokenizer, 0)


def test_a_capped_evaluation_leaves_gradient_accumulation_in_step_with_the_epochs(tmp_path, micro_model_dir, suite_dir):
    """5 micro-batches per epoch at grad_accum 2: each epoch ends with a one-batch window, so step 3 closes
    epoch 1 exactly. An evaluation cut short by eval_max_batches once left its loader registered with
    accelerate, and from then on windows ran across epochs (step 3 at 1.2 epochs)."""
    rows = [json.loads(line) for line in (suite_dir / "sft.jsonl").read_text().splitlines()]
    (tmp_path / "five.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows[:5]))
    out = tmp_path / "sft"
    result = rlcs("sft", "--config", "recipes/tiny/sft.yaml", f"output_dir={out}", f"model.path={micro_model_dir}",
                  f"data.train={tmp_path / 'five.jsonl'}", f"data.eval={suite_dir / 'sft_eval.jsonl'}",
                  "data.packing=false", "data.seq_len=256", "train.micro_batch_size=1", "train.grad_accum=2",
                  "train.epochs=2", "train.max_steps=null", "train.log_every=1", "train.eval_every=1",
                  "train.eval_max_batches=1", "logging.wandb=false")
    assert result.returncode == 0, result.stderr[-3000:]
    epochs = {row["step"]: row["train/epoch"] for row in read_metrics(out) if "train/epoch" in row}
    assert epochs == {1: 0.4, 2: 0.8, 3: 1.0, 4: 1.4, 5: 1.8, 6: 2.0}


def test_eval_conversations_longer_than_seq_len_are_counted_and_an_empty_eval_is_an_error(tmp_path, micro_model_dir,
                                                                                          suite_dir):
    short = json.loads((suite_dir / "sft.jsonl").read_text().splitlines()[0])
    long = {**short, "response": short["response"] + " and so on" * 200}
    common = ["sft", "--config", "recipes/tiny/sft.yaml", f"output_dir={tmp_path / 'sft'}",
              f"model.path={micro_model_dir}", f"data.train={suite_dir / 'sft.jsonl'}", "data.seq_len=128",
              "train.max_steps=1", "logging.wandb=false"]
    (tmp_path / "mixed.jsonl").write_text(json.dumps(short) + "\n" + json.dumps(long) + "\n")
    result = rlcs(*common, f"data.eval={tmp_path / 'mixed.jsonl'}")
    assert result.returncode == 0, result.stderr[-3000:]
    assert f"warning: 1 of {tmp_path / 'mixed.jsonl'}'s conversations are longer than data.seq_len=128" in result.stdout
    (tmp_path / "long.jsonl").write_text(json.dumps(long) + "\n")
    result = rlcs(*common, f"data.eval={tmp_path / 'long.jsonl'}")
    assert result.returncode == 2 and "every conversation is longer than data.seq_len=128" in result.stderr
