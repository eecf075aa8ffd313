"""Issue #12: every sampler in rlcs/curriculum/ behind one registry, one recipe section per sampler (old flat
keys say where they moved), unique ids, and retirement of items that never pass."""

from typing import ClassVar

import numpy as np
import pytest
import yaml

from rlcs import config
from rlcs.config import RecipeError, RLRecipe, SamplerConfig, load_recipe, validate_recipe
from rlcs.curriculum.baselines import DapoSampler, UniformSampler
from rlcs.curriculum.interface import GroupOutcome, SamplerOptions, index_by_id
from rlcs.curriculum.registry import SAMPLERS, build_sampler, sampler_class
from rlcs.curriculum.rlcs import RLCSOptions, RLCSSampler


def _examples(n, domain="d"):
    return [{"id": f"{domain}{i}", "domain": domain, "prompt": str(i), "answer": "x"} for i in range(n)]


def _outcome(example_id, passes, g=8, domain="d"):
    return GroupOutcome(example_id, domain, [1.0] * passes + [0.0] * (g - passes), passes)


def _rl_recipe(sampler: dict) -> dict:
    # hub ids pass validation without files, so no model or data is needed to check the sampler section
    return {"output_dir": "out", "model": {"path": "org/model"}, "data": {"train": "org/dataset"},
            "rewards": {"d": {"verifier": "math"}}, "sampler": sampler}


# -- the registry ------------------------------------------------------------------

def test_the_registry_builds_each_sampler_with_its_own_section():
    assert sampler_class("rlcs") is RLCSSampler and sampler_class("dapo") is DapoSampler
    assert set(SAMPLERS) == {"uniform", "dapo", "rlcs"}
    examples = _examples(10)
    assert type(build_sampler(SamplerConfig(name="uniform"), examples, 8, 0)) is UniformSampler
    dapo = build_sampler(SamplerConfig(name="dapo", dapo={"max_refills": 1}), examples, 8, 0)
    assert isinstance(dapo, DapoSampler) and dapo.max_refills == 1
    rlcs = build_sampler(SamplerConfig(rlcs={"prior_strength": 7.0}), examples, 8, 0)  # rlcs is the default
    assert isinstance(rlcs, RLCSSampler) and rlcs.config.prior_strength == 7.0
    a, b = rlcs.posterior()
    assert a[0] + b[0] == pytest.approx(7.0)  # the section's prior strength reached the posterior


def test_an_unknown_sampler_name_lists_the_known_ones():
    with pytest.raises(ValueError, match=r"unknown sampler 'thompson'; known samplers: dapo, rlcs, uniform"):
        sampler_class("thompson")
    with pytest.raises(RecipeError, match=r"sampler\.name: Input should be 'uniform', 'dapo' or 'rlcs'"):
        validate_recipe(_rl_recipe({"name": "thompson"}), RLRecipe)


def test_a_new_sampler_is_one_class_and_one_registry_line(monkeypatch):
    class FifoOptions(SamplerOptions):
        window: int = 4

    class FifoSampler(UniformSampler):
        Options: ClassVar[type[SamplerOptions] | None] = FifoOptions

        @classmethod
        def build(cls, examples, options, group_size, seed):
            sampler = cls(examples, seed)
            sampler.window = options.window
            return sampler

    monkeypatch.setitem(SAMPLERS, "fifo", FifoSampler)
    schema = config._sampler_config()  # what rlcs.config builds at import, from the registry as it is now
    section = schema(name="fifo", fifo={"window": 2})
    sampler = build_sampler(section, _examples(5), 8, 0)
    assert isinstance(sampler, FifoSampler) and sampler.window == 2


# -- one section per sampler ------------------------------------------------------------

def test_each_sampler_has_its_own_section_and_overrides_reach_it(tmp_path):
    path = tmp_path / "rl.yaml"
    path.write_text(yaml.safe_dump(_rl_recipe({"name": "dapo", "dapo": {"max_refills": 5},
                                               "rlcs": {"explore": 0.1}})))
    recipe = load_recipe(path, RLRecipe, ["sampler.rlcs.thompson_temperature=0.5"])
    assert recipe.sampler.name == "dapo" and recipe.sampler.dapo.max_refills == 5
    # a section of a sampler not named is still checked and kept, so switching samplers is one override
    assert recipe.sampler.rlcs.explore == 0.1 and recipe.sampler.rlcs.thompson_temperature == 0.5
    with pytest.raises(RecipeError, match=r"sampler\.rlcs\.explor: unknown key \(did you mean 'explore'\?\)"):
        load_recipe(path, RLRecipe, ["sampler.rlcs.explor=0.1"])


def test_an_old_flat_sampler_key_says_where_it_moved(tmp_path):
    path = tmp_path / "rl.yaml"
    path.write_text(yaml.safe_dump(_rl_recipe({"name": "rlcs", "prior_strength": 4.0})))
    with pytest.raises(RecipeError) as error:
        load_recipe(path, RLRecipe)
    assert "rl.yaml" in str(error.value)
    assert "sampler.prior_strength moved to sampler.rlcs.prior_strength" in str(error.value)
    path.write_text(yaml.safe_dump(_rl_recipe({"name": "dapo"})))
    with pytest.raises(RecipeError, match=r"sampler\.max_refills moved to sampler\.dapo\.max_refills"):
        load_recipe(path, RLRecipe, ["sampler.max_refills=2"])  # a dotted override of the old layout too


# -- unique ids ---------------------------------------------------------------------

def test_examples_built_in_code_with_a_repeated_id_are_refused_naming_both():
    examples = _examples(3) + [{"id": "d1", "domain": "d", "prompt": "again", "answer": "y"}]
    with pytest.raises(ValueError, match=r"examples 2 and 4 have the same id 'd1'"):
        index_by_id(examples)
    with pytest.raises(ValueError, match=r"examples 2 and 4 have the same id 'd1'"):
        RLCSSampler(examples, RLCSOptions(), 8, seed=0)


def test_the_same_id_twice_in_one_step_adds_looks_and_evidence():
    sampler = RLCSSampler(_examples(2), RLCSOptions(prior_strength=4.0, decay=1.0, retire_after=3), 8, seed=0)
    sampler.update([_outcome("d0", 0), _outcome("d0", 0)])
    assert sampler.fails[0] == 16 and sampler.passes[0] == 0  # both groups' fails, not the last one's
    assert sampler.looks.tolist() == [2, 0]
    sampler.update([_outcome("d0", 0)])
    assert sampler.retired().tolist() == [True, False]  # 3 looks in 2 steps: retired


# -- retirement ----------------------------------------------------------------------

def _dead_domain_run(options: RLCSOptions, steps: int = 200):
    """40 items in `mid` that pass half the time and 5 in `dead` that never pass; a fixed floor of 0.2 makes
    the quotas pick 2 of every 10 from `dead` whatever the posteriors say. Returns the picks of each dead
    item over steps 50-199 (after the first looks) and the sampler."""
    examples = _examples(40, "mid") + _examples(5, "dead")
    sampler = RLCSSampler(examples, options, group_size=8, seed=0)
    rng = np.random.default_rng(0)
    picks = np.zeros(5, dtype=int)
    for step in range(steps):
        picked = sampler.pick(10)
        if step >= 50:
            for e in picked:
                if e["domain"] == "dead":
                    picks[int(e["id"][4:])] += 1
        sampler.update([_outcome(e["id"], 0 if e["domain"] == "dead" else int(rng.binomial(8, 0.5)),
                                 domain=e["domain"]) for e in picked])
    return picks, sampler


def test_an_item_that_never_passes_is_retired_and_revisited_rarely():
    floor = dict(domain_floor=0.2, explore=0.0)
    before, kept = _dead_domain_run(RLCSOptions(retire_after=0, **floor))
    after, retired = _dead_domain_run(RLCSOptions(retire_after=3, retire_revisit=20, **floor))
    assert before.sum() / (150 * 5) == pytest.approx(0.4)  # without retirement: 2 of 5 dead items every step
    # retired: each at most once in 20 steps (150 steps: 8 looks at most), although the quota asks for them
    assert (after <= 8).all() and after.sum() / (150 * 5) < 0.4 / 5
    assert (after >= 6).all()  # but still looked at again, every one of them, about once in 20 steps
    assert retired.metrics()["curriculum/retired"] == 5 and kept.metrics()["curriculum/retired"] == 0
    assert retired.metrics()["curriculum/tier/hard"] == pytest.approx(5 / 45)  # retired items count as hard


def test_a_pass_or_an_informative_group_keeps_an_item_in():
    sampler = RLCSSampler(_examples(4), RLCSOptions(retire_after=2), 8, seed=0)
    partial = GroupOutcome("d2", "d", [0.5, 0.25] * 4, passes=0)  # no pass, but the rewards differ: it teaches
    flat = GroupOutcome("d3", "d", [0.5] * 8, passes=0)
    for _ in range(2):
        sampler.update([_outcome("d0", 0), _outcome("d1", 0), partial, flat])
    assert sampler.retired().tolist() == [True, True, False, True]
    sampler.update([_outcome("d1", 1)])  # a revisit that passes once brings it back
    assert sampler.retired().tolist() == [True, False, False, True]
    restored = RLCSSampler(_examples(4), RLCSOptions(retire_after=2), 8, seed=0)
    restored.load_state_dict(sampler.state_dict())
    assert restored.retired().tolist() == [True, False, False, True]
