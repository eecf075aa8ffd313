"""RLCS: curriculum sampling on per-example pass-rate posteriors (see docs/curriculum.md)."""
