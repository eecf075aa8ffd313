"""Shared fixtures: a small task suite and a micro model built once per test session."""

from __future__ import annotations

import os
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
    "head_dim": 16,
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
