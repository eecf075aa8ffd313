"""Sampler name -> class. Adding a sampler is its class (with its ``Options`` section and ``build``) and
one line in ``SAMPLERS``: ``rlcs.config`` derives the recipe's ``sampler`` section from this table, so
``sampler.name`` accepts the new name and ``sampler.<name>`` holds its options."""

from __future__ import annotations

from collections.abc import Sequence

from pydantic import BaseModel

from rlcs.curriculum.baselines import DapoSampler, UniformSampler
from rlcs.curriculum.interface import Sampler
from rlcs.curriculum.rlcs import RLCSSampler

SAMPLERS: dict[str, type[Sampler]] = {
    "uniform": UniformSampler,
    "dapo": DapoSampler,
    "rlcs": RLCSSampler,
}


def sampler_class(name: str) -> type[Sampler]:
    """The class registered as ``name``; an unknown name is an error listing the known ones."""
    try:
        return SAMPLERS[name]
    except KeyError:
        raise ValueError(f"unknown sampler {name!r}; known samplers: {', '.join(sorted(SAMPLERS))}") from None


def build_sampler(config: BaseModel, examples: Sequence[dict], group_size: int, seed: int) -> Sampler:
    """The sampler a recipe's ``sampler`` section (``rlcs.config.SamplerConfig``) names, built with its own
    section (``sampler.<name>``)."""
    cls = sampler_class(config.name)
    options = getattr(config, config.name, None) if cls.Options is not None else None
    return cls.build(examples, options, group_size, seed)
