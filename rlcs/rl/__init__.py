"""The RL stage's components: advantages, policy loss, rollout, and the loop that joins them."""
