"""rlcs: reasoning-model training with RL and curriculum sampling."""

__version__ = "0.1.0"
