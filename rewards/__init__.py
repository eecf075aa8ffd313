"""Verifiable rewards: answer extraction shared by all verifiers, and the domain verifiers."""

from rewards.extract import BOX_CLOSE, BOX_OPEN, Extraction, extract_answer

__all__ = ["BOX_CLOSE", "BOX_OPEN", "Extraction", "extract_answer"]
