"""Every sampler the RL loop can use (see docs/curriculum.md).

- ``interface``: the ``Sampler`` protocol, ``GroupOutcome``, ``carries_signal`` and ``state_digest``
- ``baselines``: ``uniform`` and ``dapo``
- ``rlcs``: RLCS, curriculum sampling on per-example pass-rate posteriors
- ``maths``: RLCS's arithmetic, as pure functions
- ``registry``: name -> class, and ``build_sampler`` for a recipe's ``sampler`` section
"""
