"""Shared fixtures: a small task suite and a micro model built once per test session."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from rlcs.config import InitRecipe, SuiteRecipe, validate_recipe
from rlcs.stages import data as data_stage
from rlcs.stages import init as init_stage

REPO = Path(__file__).resolve().parents[1]
os.environ.setdefault("WANDB_MODE", "disabled")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

MICRO_MODEL = {
    "hidden_size": 32,
    "intermediate_size": 64,
    "num_hidden_layers": 2,
    "num_attention_heads": 2,
    "num_key_value_heads": 1,
    "head_dim": 32,  # vLLM's CPU attention has no kernel for 16
    "max_position_embeddings": 512,
    "tie_word_embeddings": True,
}


@pytest.fixture(scope="session")
def suite_dir(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("suite")
    recipe = validate_recipe(
        {"output_dir": str(out), "seed": 7, "eval_per_level": 4, "rl_per_level": 10, "sft_per_level": 12,
         "pretrain_per_level": 12},
        SuiteRecipe,
    )
    data_stage.run(recipe)
    return out


@pytest.fixture(scope="session")
def micro_model_dir(suite_dir, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("init")
    recipe = validate_recipe(
        {"output_dir": str(out), "tokenizer": {"corpus": [str(suite_dir / "pretrain.jsonl")], "vocab_size": 300},
         "model": {"model_type": "glm4", "config": MICRO_MODEL}},
        InitRecipe,
    )
    return init_stage.run(recipe)


@pytest.fixture(scope="session")
def micro_tokenizer(micro_model_dir):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(micro_model_dir)


ENV = {**os.environ, "OMP_NUM_THREADS": "1", "WANDB_MODE": "disabled"}


def load_benchmark(name: str):
    """``benchmarks/<name>.py`` as a module (each benchmark puts its own folder on sys.path for its siblings)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(name, REPO / "benchmarks" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def zero3_launcher(port: int) -> tuple[str, ...]:
    """``accelerate launch`` with 2 CPU processes under ZeRO-3 (recipes/accelerate/cpu_zero3.yaml), on its
    own rendezvous port so tests never share one."""
    return (sys.executable, "-m", "accelerate.commands.launch", "--config_file",
            str(REPO / "recipes/accelerate/cpu_zero3.yaml"), "--main_process_port", str(port))


def run_rlcs(args, launcher=None, expect_failure=False):
    """``python -m rlcs.cli ARGS`` (or under ``launcher``), asserting success unless ``expect_failure``."""
    launcher = launcher or (sys.executable,)
    result = subprocess.run([*launcher, "-m", "rlcs.cli", *args], cwd=REPO, env=ENV, capture_output=True, text=True,
                            timeout=900)
    if not expect_failure:
        assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-4000:]
    return result


@pytest.fixture(scope="session")
def choice_task(tmp_path_factory, micro_model_dir):
    """A micro model fine-tuned on two-option questions (answers A and B), and RL items whose answer is A:
    the fine-tuned model picks A about half the time, so RL has a signal to follow."""
    from rlcs.data import write_jsonl
    from rlcs.tasks import generate

    root = tmp_path_factory.mktemp("choice")
    write_jsonl([p.sft_row() for p in generate(60, seed=21, domains=["choice"], levels=(1,))], root / "sft.jsonl")
    write_jsonl([p.example() for p in generate(200, seed=22, domains=["choice"], levels=(1,)) if p.answer == "A"],
                root / "rl.jsonl")
    run_rlcs(["sft", "--config", "recipes/tiny/sft.yaml", f"output_dir={root / 'sft'}",
              f"model.path={micro_model_dir}", f"data.train={root / 'sft.jsonl'}", "data.eval=null",
              "data.seq_len=128", "train.micro_batch_size=8", "train.max_steps=600", "train.log_every=100",
              "optim.lr=1e-2", "optim.warmup_steps=10", "logging.wandb=false"])
    return root
