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
    validate_recipe(raw, SCHEMAS[path.stem.split("-")[0]], source=str(path))  # a variant: STEP-VARIANT.yaml


@pytest.mark.parametrize("path", sorted((REPO / "recipes/accelerate").glob("*.yaml")), ids=lambda p: p.name)
def test_launcher_configs_load_and_point_at_valid_deepspeed_files(path: Path):
    from accelerate.commands.config.config_args import ClusterConfig

    ClusterConfig.from_yaml_file(str(path))  # what `accelerate launch --config_file` does: unknown keys raise
    config = yaml.safe_load(path.read_text())
    assert config["distributed_type"] in {"NO", "DEEPSPEED"}
    if config["distributed_type"] == "DEEPSPEED":
        ds_file = REPO / config["deepspeed_config"]["deepspeed_config_file"]
        ds = json.loads(ds_file.read_text())
        assert ds["zero_optimization"]["stage"] in (2, 3)
        if ds["zero_optimization"]["stage"] == 3:
            assert ds["zero_optimization"]["stage3_gather_16bit_weights_on_model_save"] is True


def plan_recipes(monkeypatch):
    """benchmarks/plan_recipes.py, which owns the recipes' launch-line and memory-header formats."""
    monkeypatch.syspath_prepend(str(REPO / "benchmarks"))
    import plan_recipes

    return plan_recipes


REAL_MODEL = sorted(p for p in RECIPES if p.stem in ("sft", "rl") and not p.parent.name.startswith("tiny"))
DATA_FILES = {"sft.jsonl", "sft_eval.jsonl", "rl.jsonl", "eval.jsonl"}  # what `rlcs data` writes


@pytest.mark.parametrize("path", REAL_MODEL, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_real_model_recipes_reference_existing_files_and_a_consistent_launcher(path: Path, monkeypatch):
    import re

    raw = yaml.safe_load(path.read_text())
    header = path.read_text()
    launch = plan_recipes(monkeypatch).LAUNCHER.search(header)
    assert launch and launch.group(1) == f"recipes/{path.parent.name}", "the header's launch line names its folder"
    accelerate = yaml.safe_load((REPO / launch.group(2)).read_text())
    ds = json.loads((REPO / accelerate["deepspeed_config"]["deepspeed_config_file"]).read_text())
    assert ds["zero_optimization"]["stage"] == 3 and ds["bf16"]["enabled"] is True
    assert raw["model"]["dtype"] == "bfloat16" and f"{accelerate['num_processes']}xA100" in header
    batch = re.search(r"Global batch (\d+): (\d+) GPUs x (\d+) micro x (\d+) accumulation", header)
    if batch:
        total, gpus, micro, accumulation = map(int, batch.groups())
        assert (gpus, micro, accumulation) == (accelerate["num_processes"], raw["train"]["micro_batch_size"],
                                               raw["train"]["grad_accum"]) and total == gpus * micro * accumulation
    # every data file is one a shipped data recipe writes
    outputs = {yaml.safe_load(p.read_text())["output_dir"] for p in RECIPES if p.stem == "data"}
    for key in ("train", "eval"):
        file = Path(raw["data"][key])
        assert str(file.parent) in outputs and file.name in DATA_FILES, f"data.{key}: nothing writes {file}"
    chained = str(raw["model"]["path"]).startswith("outputs/")
    assert not chained or raw["model"]["path"] == f"outputs/{path.parent.name}/sft/model"
    assert raw["output_dir"] == f"outputs/{path.parent.name}/{path.stem}"


@pytest.mark.parametrize("path", REAL_MODEL, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_real_model_recipes_state_the_memory_rlcs_plan_gives(path: Path, monkeypatch):
    """The header's expected peak per GPU is what `rlcs plan` says for the recipe today (offline: the
    models' published sizes), so a change to the plan or the recipe cannot leave a stale figure."""
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_OFFLINE", True)  # no retries against the hub
    bench = plan_recipes(monkeypatch)
    gib, phase, printed = bench.plan_recipe(path)
    stated = bench.HEADER.search(path.read_text())
    assert stated and stated.group(0) == bench.header_line(path, gib, phase, "vision activations" in printed), \
        "run python benchmarks/plan_recipes.py --write-headers"
    assert gib < 80, "the recipe does not fit the 80 GiB GPUs it names"
    if "freeze-vit" in path.parent.name or "lora" in path.parent.name:
        assert "trained)" in printed and "the tower frozen" in printed
