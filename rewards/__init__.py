"""Verifiable rewards: answer extraction, the domain verifiers, and the registry that finds them.

    import rewards
    @rewards.register("my_domain")
    def my_reward(completion, example): ...
    rewards.get("numeric")(completion, example)
"""

from rewards.extract import BOX_CLOSE, BOX_OPEN, Extraction, extract_answer
from rewards.registry import RewardSpecError, get, register

__all__ = ["BOX_CLOSE", "BOX_OPEN", "Extraction", "RewardSpecError", "extract_answer", "get", "register"]
