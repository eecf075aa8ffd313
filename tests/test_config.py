from pathlib import Path

import pytest
import yaml

from rlcs.config import RecipeError, SFTRecipe, apply_overrides, dump_recipe, load_recipe

REPO = Path(__file__).resolve().parents[1]


def _write(tmp_path, recipe: dict) -> Path:
    path = tmp_path / "sft.yaml"
    path.write_text(yaml.safe_dump(recipe))
    return path


@pytest.fixture
def base(tmp_path, micro_model_dir, suite_dir):
    return {"output_dir": str(tmp_path / "out"), "model": {"path": str(micro_model_dir)},
            "data": {"train": str(suite_dir / "sft.jsonl")}}


def test_a_valid_recipe_loads_with_defaults(tmp_path, base):
    recipe = load_recipe(_write(tmp_path, base), SFTRecipe)
    assert recipe.data.packing is True and recipe.optim.max_grad_norm == 1.0


def test_unknown_key_names_the_path_and_the_close_match(tmp_path, base):
    base["optim"] = {"lrr": 1e-4}
    with pytest.raises(RecipeError) as error:
        load_recipe(_write(tmp_path, base), SFTRecipe)
    message = str(error.value)
    assert "sft.yaml" in message and "optim.lrr: unknown key" in message and "did you mean 'lr'" in message


def test_wrong_type_names_the_key_path(tmp_path, base):
    base["train"] = {"micro_batch_size": "eight"}
    with pytest.raises(RecipeError, match=r"train\.micro_batch_size: .*integer"):
        load_recipe(_write(tmp_path, base), SFTRecipe)


def test_missing_data_file_and_model_dir_are_named(tmp_path, base):
    base["data"]["train"] = str(tmp_path / "nope.jsonl")
    base["model"]["path"] = str(tmp_path / "no-model")
    with pytest.raises(RecipeError) as error:
        load_recipe(_write(tmp_path, base), SFTRecipe)
    assert "data.train: file not found" in str(error.value)
    assert "model.path: model directory not found" in str(error.value)


def test_missing_required_key(tmp_path, base):
    del base["output_dir"]
    with pytest.raises(RecipeError, match="output_dir: required key is missing"):
        load_recipe(_write(tmp_path, base), SFTRecipe)


def test_dotted_overrides_are_typed_and_validated(tmp_path, base):
    path = _write(tmp_path, base)
    recipe = load_recipe(path, SFTRecipe, ["optim.lr=1e-4", "data.packing=false", "train.max_steps=3"])
    assert recipe.optim.lr == 1e-4 and recipe.data.packing is False and recipe.train.max_steps == 3
    with pytest.raises(RecipeError, match="optim.lrate: unknown key"):
        load_recipe(path, SFTRecipe, ["optim.lrate=1"])
    with pytest.raises(RecipeError, match="not of the form"):
        apply_overrides({}, ["optim.lr"])


def test_resolved_recipe_round_trips(tmp_path, base):
    recipe = load_recipe(_write(tmp_path, base), SFTRecipe, ["optim.lr=5e-4"])
    dump_recipe(recipe, tmp_path / "resolved.yaml")
    again = load_recipe(tmp_path / "resolved.yaml", SFTRecipe)
    assert again == recipe


def test_hub_ids_pass_validation_without_a_local_directory(tmp_path, base):
    base["model"]["path"] = "zai-org/GLM-4-9B-0414"
    assert load_recipe(_write(tmp_path, base), SFTRecipe).model.path == "zai-org/GLM-4-9B-0414"


def test_an_answer_budget_that_leaves_no_room_to_think_is_refused(tmp_path):
    from rlcs.config import RLRecipe

    with pytest.raises(RecipeError, match=r"rollout.*max_new_tokens \(16\) must exceed answer_budget \(16\)"):
        load_recipe(REPO / "recipes/tiny/rl.yaml", RLRecipe,
                    ["rollout.max_new_tokens=16", "rollout.answer_budget=16", "model.path=gpt2",
                     "data.train=org/dataset", "data.eval=null"])


def test_prior_by_is_set_from_the_command_line_and_builds_a_sampler_with_level_strata():
    from rlcs.config import RLRecipe
    from rlcs.curriculum.registry import build_sampler

    recipe = load_recipe(REPO / "recipes/tiny/rl.yaml", RLRecipe,
                         ["sampler.rlcs.prior_by=[level]", "model.path=gpt2", "data.train=org/dataset",
                          "data.eval=null"])
    assert recipe.sampler.rlcs.prior_by == ["level"]
    rows = [{"id": f"{level}-{i}", "domain": "d", "level": level, "prompt": "p", "answer": "a"}
            for level in (1, 2) for i in range(3)]
    sampler = build_sampler(recipe.sampler, rows, 8, 0)
    assert [label[1] for label in sampler.strata] == [1, 2]


@pytest.mark.parametrize("override, hint", [
    ("model.lora.rr=4", "model.lora.rr: unknown key (did you mean 'r'?)"),  # an optional section
    ("rewards.choice.verifer=choice", "rewards.choice.verifer: unknown key (did you mean 'verifier'?)"),  # a mapping
    ("rewards.choice.zzz=1", "rewards.choice.zzz: unknown key (valid keys: kwargs, min_reward, terms, verifier)"),
])
def test_unknown_keys_inside_optional_sections_and_mappings_get_their_hint(override, hint):
    from rlcs.config import RLRecipe

    with pytest.raises(RecipeError) as error:
        load_recipe(str(Path(__file__).resolve().parents[1] / "recipes/tiny/rl.yaml"), RLRecipe, [override])
    assert hint in str(error.value)
