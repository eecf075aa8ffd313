"""Worked examples of custom reward modules (see docs/rewards.md)."""
