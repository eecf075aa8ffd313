"""Every shipped recipe and launcher config is valid as written."""

import json
from pathlib import Path

import pytest
import yaml

from rlcs.config import InitRecipe, PretrainRecipe, RLRecipe, SFTRecipe, SuiteRecipe, validate_recipe

from .conftest import REPO

SCHEMAS = {"data": SuiteRecipe, "init": InitRecipe, "pretrain": PretrainRecipe, "sft": SFTRecipe, "rl": RLRecipe}
RECIPES = sorted(p for p in (REPO / "recipes").glob("*/*.yaml") if p.parent.name != "accelerate")


@pytest.mark.parametrize("path", RECIPES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_shipped_recipe_keys_and_types_are_valid(path: Path, suite_dir, micro_model_dir):
    raw = yaml.safe_load(path.read_text())
    # Generated inputs do not exist in a fresh checkout: point them at the test fixtures.
    for key in ("train", "eval"):
        if key in raw.get("data", {}):
            raw["data"][key] = str(suite_dir / Path(raw["data"][key]).name)
    if "corpus" in raw.get("tokenizer", {}):
        raw["tokenizer"]["corpus"] = [str(suite_dir / Path(c).name) for c in raw["tokenizer"]["corpus"]]
    if str(raw.get("model", {}).get("path", "")).startswith("outputs/"):
        raw["model"]["path"] = str(micro_model_dir)
    validate_recipe(raw, SCHEMAS[path.stem], source=str(path))


@pytest.mark.parametrize("path", sorted((REPO / "recipes/accelerate").glob("*.yaml")), ids=lambda p: p.name)
def test_launcher_configs_point_at_valid_deepspeed_files(path: Path):
    config = yaml.safe_load(path.read_text())
    assert config["distributed_type"] in {"NO", "DEEPSPEED"}
    if config["distributed_type"] == "DEEPSPEED":
        ds_file = REPO / config["deepspeed_config"]["deepspeed_config_file"]
        ds = json.loads(ds_file.read_text())
        assert ds["zero_optimization"]["stage"] in (2, 3)
        if ds["zero_optimization"]["stage"] == 3:
            assert ds["zero_optimization"]["stage3_gather_16bit_weights_on_model_save"] is True
